#!/bin/sh
# Issue 13, item 2: writers on a full disk. Mounts a 64 KiB tmpfs in a private mount
# namespace (root only; prints "SKIP" otherwise), puts old files there and lets
# `moec compile --emit=mlir` and `moec synth` fail on it. Each must fail with one line
# naming the file, keep the old file as it was and leave nothing else.
# usage: full_disk.sh DIR CHECKPOINT
set -u
dir=$1 ckpt=$2
if [ "${MOEC_IN_NAMESPACE:-}" != 1 ]; then
  if ! unshare --mount true 2>/dev/null; then echo SKIP; exit 0; fi
  MOEC_IN_NAMESPACE=1 exec unshare --mount --propagation private sh "$0" "$@"
fi
mkdir -p "$dir/small"
mount -t tmpfs -o size=64k tmpfs "$dir/small" || { echo SKIP; exit 0; }
printf 'old mlir\n' > "$dir/small/m.mlir"
mkdir "$dir/small/ck"
printf 'old weights\n' > "$dir/small/ck/model.safetensors"
head -c 1000000 /dev/zero > "$dir/small/fill" 2>/dev/null # the disk is now full
if moec compile "$ckpt" --emit=mlir -o "$dir/small/m.mlir" 2> "$dir/err1"; then
  echo "compile succeeded on a full disk"; exit 1
fi
echo "mlir: $(cat "$dir/small/m.mlir") | $(wc -l < "$dir/err1") line(s): $(cat "$dir/err1")"
if moec synth --preset tiny-v3 -o "$dir/small/ck" 2> "$dir/err2"; then
  echo "synth succeeded on a full disk"; exit 1
fi
echo "synth: $(cat "$dir/small/ck/model.safetensors") | $(wc -l < "$dir/err2") line(s): $(cat "$dir/err2")"
echo "left: $(ls -A "$dir/small" | tr '\n' ' ')/ ck: $(ls -A "$dir/small/ck" | tr '\n' ' ')"
