#!/usr/bin/env bash
# The programs the tests run beside Python: git (git hooks, ama git), man (the installed
# man pages) and chromium (the dashboard's browser tests, which Playwright drives: it cannot
# download a browser of its own here). Installed with apt-get when missing and this is root
# on Debian or Ubuntu; otherwise the missing ones are named and the test run stops. Every
# service the tests use (PostgreSQL, moto's S3, fake-gcs-server, ama-server) comes from the
# test extra's wheels.
set -euo pipefail
declare -A package=([git]=git [man]=man-db [chromium]=chromium)
missing=()
for tool in "${!package[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${package[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "make test: installing ${missing[*]} (apt-get)" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
else
  echo "make test: the tests need these packages: ${missing[*]}; install them and run again" >&2
  exit 1
fi
