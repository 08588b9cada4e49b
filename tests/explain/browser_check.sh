#!/usr/bin/env bash
# The explain report in a real browser: `moec explain` of a tiny-v3 checkpoint
# (FP8, so every section has content), then Debian's headless chromium dumps its
# DOM and takes a screenshot (check_report.py). Exits 77 (skipped) without chromium.
# usage: browser_check.sh MOEC_BIN_DIR WORK_DIR
set -euo pipefail
bin=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v chromium >/dev/null 2>&1; then
  echo "SKIP: chromium not installed (scripts/setup.sh installs it)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
"$bin/moec" synth --preset tiny-v3 -o "$work/tiny"
"$bin/moec" explain "$work/tiny" --quantize=fp8 -o "$work/report.html" --quiet
python3 "$here/check_report.py" "$work/report.html" "$work"
