#!/usr/bin/env bash
# check-clean-root.sh: proves that the README's set-up works on a fresh machine.
#
# Builds a clean Debian 12 (bookworm) root with debootstrap, bind-mounts a moec
# checkout into it at /src and runs the README's test command (scripts/test.sh)
# there with chroot. scripts/setup.sh has to install everything the build and the
# tests use: a package that only a developer's machine has makes this fail.
#
# usage: scripts/check-clean-root.sh [OPTIONS]
#   -s, --source DIR        checkout to test (default: the repository holding this script)
#   -c, --cache DIR         cache and work folder (default: /var/cache/moec-clean-root)
#       --command CMD       command run in /src inside the root (default: scripts/test.sh;
#                           scripts/run.sh checks the main job instead)
#   -j, --jobs N            MOEC_JOBS inside the root (default: the scripts' own, nproc)
#       --base-packages L   packages the root starts with besides debootstrap's minbase,
#                           space-separated (default: "g++ make cmake python3 git ca-certificates")
#       --mirror URL        Debian mirror (default: http://deb.debian.org/debian)
#       --security-mirror URL  (default: http://deb.debian.org/debian-security)
#       --rebuild-base      bootstrap the base root again even if its tarball is cached
#       --no-apt-cache      do not keep downloaded .debs in CACHE/apt-archives between runs
#   -h, --help              this text
#
# What it does, each step printed as "check-clean-root: ...":
#  1. Installs debootstrap on the host if missing (apt-get; needs root).
#  2. The base root, made once and cached as CACHE/base-<hash>.tar.gz (the hash covers
#     suite, mirrors and base packages): debootstrap --variant=minbase bookworm, then
#     sources for bookworm, bookworm-updates and bookworm-security (LLVM/MLIR 22 come
#     from bookworm-security), upgraded, plus the base packages, then the apt lists
#     are removed, as on a machine that never ran apt-get update.
#     The base is a strict subset of what a fresh project machine (the cpp-kernels
#     image) already has, so whatever else the test needs must come from setup.sh.
#  3. Every run unpacks that tarball into a fresh CACHE/root (the previous run's root
#     is deleted first; it is kept after a run for inspection).
#  4. Mounts: /proc, /sys (read-only), /dev, /dev/pts, a private tmpfs on /dev/shm,
#     the checkout read-write at /src, and CACHE/apt-archives at /var/cache/apt/archives
#     (only downloaded .debs; the installed packages are new each run).
#  5. chroot CACHE/root, cd /src, runs the command with a clean environment and
#     MOEC_BUILD_DIR=/build: the build lands inside the root, never in the checkout's
#     build folders.
#  6. A trap unmounts everything on exit, also on failure or Ctrl-C. The exit status
#     is the command's; the output is also written to CACHE/last-run.log.
#
# Run it as root (debootstrap, mount and chroot need it), on a Debian/Ubuntu host with
# network access to the mirror. It takes a while: the apt installs download LLVM,
# and the build and every test run as in CI. On a shared machine run it niced:
#   nice -n 19 scripts/check-clean-root.sh
# To test the last commit rather than a work tree that is being edited:
#   git clone /path/to/moec /tmp/moec-clean-src
#   nice -n 19 scripts/check-clean-root.sh --source /tmp/moec-clean-src
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SOURCE=$(cd "$SCRIPT_DIR/.." && pwd)
CACHE=/var/cache/moec-clean-root
COMMAND=scripts/test.sh
JOBS=
BASE_PACKAGES="g++ make cmake python3 git ca-certificates"
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
REBUILD_BASE=0
APT_CACHE=1

say() { echo "check-clean-root: $*" >&2; }
die() { say "error: $*"; exit 2; }
usage() { sed -n '2,/^set -euo pipefail/{/^set /d;s/^# \{0,1\}//;p}' "$0"; }

while (($#)); do
  case $1 in
    -s|--source) SOURCE=${2:?}; shift 2 ;;
    -c|--cache) CACHE=${2:?}; shift 2 ;;
    --command) COMMAND=${2:?}; shift 2 ;;
    -j|--jobs) JOBS=${2:?}; shift 2 ;;
    --base-packages) BASE_PACKAGES=${2?}; shift 2 ;;
    --mirror) MIRROR=${2:?}; shift 2 ;;
    --security-mirror) SECURITY_MIRROR=${2:?}; shift 2 ;;
    --rebuild-base) REBUILD_BASE=1; shift ;;
    --no-apt-cache) APT_CACHE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, mount and chroot need it)"
SOURCE=$(cd "$SOURCE" && pwd) || die "no source directory: $SOURCE"
[ -x "$SOURCE/scripts/test.sh" ] || die "$SOURCE is not a moec checkout (no scripts/test.sh)"
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ROOT=$CACHE/root
LOG=$CACHE/last-run.log
case $ROOT/ in "$SOURCE"/*) die "the cache ($CACHE) must not lie inside the source ($SOURCE)" ;; esac
case $SOURCE/ in "$ROOT"/*) die "the source ($SOURCE) must not lie inside the root ($ROOT)" ;; esac

# --- Mounts, always undone by the trap. ---
MOUNTS=()  # mount points, in the order mounted

# Mount points under $1 (from the kernel's table, so also ones left by a killed run).
mounts_under() {
  awk -v r="$1" '{ gsub(/\\040/, " ", $2); if ($2 == r || index($2, r "/") == 1) print $2 }' \
    /proc/self/mounts | sort -r
}

do_mount() {  # do_mount TARGET MOUNT-ARGS...
  local target=$1; shift
  mkdir -p "$target"
  mount "$@" "$target"
  MOUNTS+=("$target")
}

unmount_all() {
  local i m
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    m=${MOUNTS[i]}
    if mountpoint -q "$m"; then
      umount "$m" 2>/dev/null || umount -l "$m" || say "warning: could not unmount $m"
    fi
  done
  MOUNTS=()
  # Anything else still mounted below the root (a process inside mounted it).
  for m in $(mounts_under "$ROOT"); do
    umount "$m" 2>/dev/null || umount -l "$m" || say "warning: could not unmount $m"
  done
}

# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local rc=$?
  if ((${#MOUNTS[@]})) || [ -n "$(mounts_under "$ROOT")" ]; then
    say "unmounting everything under $ROOT"
    unmount_all
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_system() {  # the kernel filesystems the build, apt and the tests use
  do_mount "$ROOT/proc" -t proc proc
  do_mount "$ROOT/sys" --bind /sys
  mount -o remount,bind,ro "$ROOT/sys"
  do_mount "$ROOT/dev" --bind /dev
  do_mount "$ROOT/dev/pts" --bind /dev/pts
  do_mount "$ROOT/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
}

# Deletes $ROOT, but only with nothing mounted inside it: a bind-mounted checkout
# would be deleted with it.
remove_root() {
  [ -e "$ROOT" ] || return 0
  unmount_all
  [ -z "$(mounts_under "$ROOT")" ] || die "still mounted under $ROOT; not deleting it"
  say "removing the previous root $ROOT"
  rm -rf --one-file-system "$ROOT"
}

in_root() {  # a command inside the root, with a clean environment
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# --- 1. debootstrap on the host. ---
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on the host"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    debootstrap debian-archive-keyring
fi

# --- 2. The base root, cached. ---
key=$(printf '%s\n' 3 "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$BASE_PACKAGES" | sha256sum | cut -c1-12)
BASE_TAR=$CACHE/base-$SUITE-$key.tar.gz
if ((REBUILD_BASE)) || [ ! -s "$BASE_TAR" ]; then
  remove_root
  say "bootstrapping $SUITE (minbase) from $MIRROR into $ROOT"
  debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
  say "apt sources: $SUITE, $SUITE-updates, $SUITE-security"
  cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  # No daemons start inside the root.
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  mount_system
  say "upgrading, then installing the base packages: $BASE_PACKAGES"
  in_root apt-get update
  in_root apt-get -y dist-upgrade
  # shellcheck disable=SC2086
  [ -z "$BASE_PACKAGES" ] || in_root apt-get install -y --no-install-recommends $BASE_PACKAGES
  in_root apt-get clean
  unmount_all
  rm -rf "$ROOT"/var/lib/apt/lists/*
  say "caching the base root as $BASE_TAR"
  tar --numeric-owner -czpf "$BASE_TAR.tmp" -C "$ROOT" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf --one-file-system "$ROOT"
else
  say "reusing the cached base root $BASE_TAR"
fi

# --- 3. A fresh root for this run. ---
remove_root
say "unpacking a fresh root into $ROOT"
mkdir -p "$ROOT"
tar --numeric-owner -xzpf "$BASE_TAR" -C "$ROOT"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

# --- 4. Mounts. ---
say "mounting /proc, /sys, /dev; $SOURCE at /src"
mount_system
do_mount "$ROOT/src" --bind "$SOURCE"
if ((APT_CACHE)); then
  mkdir -p "$CACHE/apt-archives/partial"
  say "keeping downloaded .debs in $CACHE/apt-archives"
  do_mount "$ROOT/var/cache/apt/archives" --bind "$CACHE/apt-archives"
fi

# --- 5. The command. ---
env_args=(MOEC_BUILD_DIR=/build)
[ -z "$JOBS" ] || env_args+=(MOEC_JOBS="$JOBS")
say "running in the root: cd /src && ${env_args[*]} $COMMAND  (log: $LOG)"
start=$(date +%s)
set +e
in_root "${env_args[@]}" /bin/bash -c "cd /src && $COMMAND" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - start))
wall=$(printf '%dm%02ds' $((elapsed / 60)) $((elapsed % 60)))

# --- 6. Result (the trap unmounts). ---
if [ "$rc" = 0 ]; then
  say "PASS: '$COMMAND' in a clean $SUITE root, $wall"
else
  say "FAIL (exit $rc): '$COMMAND' in a clean $SUITE root, $wall; log: $LOG, root kept at $ROOT"
fi
exit "$rc"
