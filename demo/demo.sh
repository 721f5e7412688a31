#!/usr/bin/env bash
# The main job, end to end on a fresh machine: hash files into the object database, stage
# them, write a tree and a manifest, read them back, move a ref by compare-and-swap, check
# out the version into a second directory, and verify the store. Everything happens under a
# temporary AMA_HOME; nothing outside it is touched.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/ama-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export AMA_HOME="$work/store"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

mkdir -p "$work/model/.ama" "$work/model/config"
cd "$work/model"
head -c 3000000 /dev/urandom > weights.bin
printf 'lr: 0.001\nepochs: 10\n' > config/train.yaml
printf 'a tiny model\n' > README.txt

run ama hash-object weights.bin
run ama update-index --add weights.bin config/train.yaml README.txt
run ama ls-files -s
say 'TREE=$(ama write-tree)'; TREE=$(ama write-tree); echo "$TREE"
run ama ls-tree -r "$TREE"
say "MANIFEST=\$(ama commit-manifest \$TREE -m 'first version')"
MANIFEST=$(AMA_AUTHOR_NAME="Demo User" AMA_AUTHOR_EMAIL=demo@example.org \
  ama commit-manifest "$TREE" -m "first version")
echo "$MANIFEST"
run ama cat-object -p "$MANIFEST"
run ama update-ref refs/demo/model "$MANIFEST" ""
run ama rev-parse 'refs/demo/model^{tree}'

mkdir -p "$work/copy/.ama"
cd "$work/copy"
run ama read-tree refs/demo/model
run ama checkout-index -a
run cmp "$work/model/weights.bin" weights.bin
echo "weights.bin is byte for byte the original"
run ama rev-list --objects refs/demo/model
run ama fsck --full
run ama count-objects -v
printf '\nDemo finished: every object verified.\n'
