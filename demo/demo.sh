#!/usr/bin/env bash
# The README's newcomer flow, end to end on a fresh machine with the embedded file://
# remote (no server, no login): create a class, start an asset, stage and upload two
# versions, clone it elsewhere, list its versions and switch back to the first. Everything
# happens under a temporary AMA_HOME; nothing outside it is touched.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/ama-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export AMA_HOME="$work/store" AMA_AUTHOR_NAME="Demo User" AMA_AUTHOR_EMAIL=demo@example.org
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
# Print a command as it would be pasted: words with spaces or quotes in single quotes.
shown() {
  local words=() w q="'"
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then words+=("$w")
    else words+=("'${w//$q/$q\\$q$q}'"); fi
  done
  printf '%s' "${words[*]}"
}
run() { say "$(shown "$@")"; "$@"; }

cd "$work"
run ama class init ml-models --description "Trained models"
say "mkdir m && cd m"; mkdir m && cd m
run ama init ml-models
head -c 3000000 /dev/urandom > weights.bin
mkdir config && printf 'lr: 0.001\nepochs: 10\n' > config/train.yaml
run ama add .
run ama status
run ama upload -m "first"
printf 'lr: 0.0005\nepochs: 20\n' > config/train.yaml
run ama status
run ama update config/train.yaml
run ama upload -m "second"
say "cd .."; cd ..
run ama clone ml-models/1
say "cd ml-models/1"; cd ml-models/1
run ama versions
run ama switch 0.0.0
run cat config/train.yaml
run ama history
run cmp "$work/m/weights.bin" weights.bin
echo "weights.bin is byte for byte the original"
run ama store verify
