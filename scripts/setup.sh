#!/usr/bin/env bash
# moec set-up: installs every missing build and test dependency from Debian's packages.
# Safe to run repeatedly; it only calls apt-get when something is missing.
# Every package the build or a test uses is listed here; a configure step that lacks one
# fails naming it (cmake/MoecRequire.cmake). scripts/check-clean-root.sh proves the list
# complete: it runs scripts/test.sh in a clean Debian root.
set -euo pipefail

PACKAGES=(
  # build tools
  cmake ninja-build ccache g++ python3
  # compiler side: LLVM/MLIR 22 (libMLIR.so, mlir-tblgen, FileCheck, lit)
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  # clang for the loader fuzz sub-builds and the ASan + UBSan build of the suite
  # (scripts/test-sanitizers.sh): libFuzzer/ASan/UBSan runtimes, OpenMP for clang
  # (llvm-symbolizer for the reports comes with llvm-22-dev)
  clang-22 libclang-rt-22-dev libomp-22-dev
  # serialization, config and ONNX
  flatbuffers-compiler libflatbuffers-dev nlohmann-json3-dev libonnx-dev libprotobuf-dev protobuf-compiler
  # checksums of plans and weight files
  libxxhash-dev
  # the runtime's tokenizer: PCRE2 (Unicode properties, lookahead, JIT) for the
  # pre-tokenizer's Split regexes; xz unpacks the DeepSeek-V3 tokenizer fixture
  libpcre2-dev xz-utils
  # moec-serve: the HTTP server library (pkg-config finds it)
  libcpp-httplib-dev pkg-config
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # readelf and nm for the layering test
  binutils
  # a terminal for the interactive tests (moec-run --chat, tests/lit/Driver/chat-terminal.test)
  tmux
  # headless browser that loads and screenshots the `moec explain` report
  # (tests/explain/check_report.py)
  chromium
  # a CJK font, so the headless screenshots of Chinese text show glyphs (moec-serve's page)
  fonts-wqy-microhei
  # a Python venv for the official openai client (below)
  python3-venv
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} missing package(s): ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present" >&2
fi

# The official openai Python client, which tests/serve drives moec-serve with (ctest
# serve.openai), is not packaged by Debian: it goes into a venv beside the checkout
# (.venv-test, ignored by git) from PyPI. Without PyPI that one test is skipped with a line.
VENV="$(cd "$(dirname "$0")/.." && pwd)/.venv-test"
if ! "$VENV/bin/python" -c "import openai" 2>/dev/null; then
  echo "setup: installing the openai Python client into $VENV (PyPI)" >&2
  if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check \
           "openai>=1.0"; }; then
    echo "setup: could not install the openai client from PyPI; the serve.openai test will be skipped" >&2
  fi
fi
