#!/usr/bin/env bash
# Compile ArsimCore and run its XCTests (MetricsVectorTests against the shared metrics vector)
# with a real Swift toolchain on a Linux host without one: a minimal Debian trixie root
# (debootstrap, variant minbase) with Debian's `swiftlang` package, made once and kept in
# mobile/.swift-root/ (ignored by git), then `swift build` + `swift test` inside it (chroot) on
# a copy of mobile/ios and of the vector. Needs root, rsync, unshare, and debootstrap for the
# first run (~0.6 GB download, ~2.6 GB on disk, ~2 min); later runs copy the sources and compile.
#
#   bash mobile/ios/check.sh             (make swift-check)
#
# Environment:
#   ARSIM_METRICS_VECTOR  the vector to check against (default mobile/test-vectors/metrics-vector.json)
#   ARSIM_SWIFT_ROOT      where the root is kept (default mobile/.swift-root)
#   ARSIM_DEBIAN_MIRROR   Debian mirror for debootstrap (default http://deb.debian.org/debian)
# Exit 0 only when everything compiled and every test ran and passed; 1 a compile error, a
# failed or skipped test, or no test run; 2 a missing prerequisite; 3 the root could not run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mobile="$(dirname "$here")"
base="${ARSIM_SWIFT_ROOT:-$mobile/.swift-root}"
mirror="${ARSIM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
vector="${ARSIM_METRICS_VECTOR:-$mobile/test-vectors/metrics-vector.json}"
started=$SECONDS

say() { printf 'swift-check: %s\n' "$*"; }
die() { say "error: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot)"
[ -f "$vector" ] || die "no metrics vector at $vector"
vector="$(cd "$(dirname "$vector")" && pwd)/$(basename "$vector")"
tools=()
command -v rsync >/dev/null || tools+=(rsync)
command -v debootstrap >/dev/null || tools+=(debootstrap)
if [ ${#tools[@]} -gt 0 ]; then # Debian's packages, as mobile/setup.sh installs chromium
    command -v apt-get >/dev/null || die "${tools[*]} missing and no apt-get to install them"
    say "installing Debian ${tools[*]}"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 \
        "${tools[@]}" >/dev/null || die "apt-get could not install ${tools[*]}"
fi
command -v flock >/dev/null && command -v unshare >/dev/null || die "flock or unshare missing (util-linux)"

mkdir -p "$base"
base="$(cd "$base" && pwd -P)" # physical: processes are told apart by their root's path
rootfs="$base/trixie"
ready="$base/trixie.ready"
exec 9>"$base/.lock"
flock -n 9 || { say "another check holds $base/.lock; waiting"; flock 9; }

# Everything in the root runs in new PID and mount namespaces (unshare): /proc, which swift
# needs (glibc finds the toolchain's libraries through $ORIGIN = /proc/self/exe), is mounted in
# that private mount namespace only, so the host never sees the mount and it goes away with the
# namespace however the check ends, SIGKILL included. The first process in there is its PID 1:
# when it dies, the kernel kills all the others.
in_root() { # dir, command...: a clean environment inside the root
    unshare --pid --fork --kill-child=KILL --mount --propagation private /bin/sh -c '
        dir="$1"; shift
        mount -t proc proc "$dir/proc" || exit 2
        exec chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"' sh "$@"
}

# On Ctrl-C or SIGTERM whatever still runs in the root is stopped: swift-build starts the
# compilers in process groups of their own, so they are found by their root directory (only
# this check, under its lock, runs anything in this root). TERM first; after 2 s KILL, which
# also ends the namespace's PID 1 (it ignores TERM) and with it every process left in there.
in_root_pids() { # dir: the processes whose root is dir
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] && printf '%s\n' "${p#/proc/}"
    done
    return 0
}
stop_in_root() { # dir
    local pids round=0
    while pids="$(in_root_pids "$1")"; [ -n "$pids" ]; do
        if [ $round -lt 20 ]; then kill -TERM $pids 2>/dev/null || true
        else kill -KILL $pids 2>/dev/null || true; fi
        [ $round -lt 100 ] || { say "warning: processes left in $1: $pids" >&2; return 0; }
        round=$((round + 1))
        sleep 0.1
    done
}
release() {
    local dir
    for dir in "$rootfs" "$base/trixie.partial"; do
        if [ -d "$dir" ]; then stop_in_root "$dir"; fi
    done
    return 0
}
trap release EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# swiftlang only recommends libc6-dev, but linking anything (even Package.swift) needs it
packages="swiftlang libc6-dev"
install_packages() { # dir
    in_root "$1" apt-get update -q
    in_root "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
    in_root "$1" apt-get clean
}
if [ ! -s "$ready" ]; then
    command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
    partial="$base/trixie.partial"
    for dir in "$partial" "$rootfs"; do # never rm -rf through a mount
        if awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
            die "something is mounted under $dir; unmount it first"
        fi
    done
    rm -rf "$partial" "$rootfs"
    say "making a Debian trixie root in $rootfs (once; ~0.6 GB download, ~2.6 GB on disk)"
    debootstrap --variant=minbase trixie "$partial" "$mirror"
    install_packages "$partial"
    version="$(in_root "$partial" swift --version 2>&1 | grep -m 1 -i 'swift version')" \
        || die "swift does not run in the new root"
    mv "$partial" "$rootfs"
    printf '%s\npackages: %s\n' "$version" "$packages" >"$ready.tmp" && mv "$ready.tmp" "$ready"
    say "root ready: $version ($((SECONDS - started)) s)"
elif ! grep -qxF "packages: $packages" "$ready"; then
    say "adding packages to the root: $packages"
    install_packages "$rootfs"
    version="$(head -n 1 "$ready")"
    printf '%s\npackages: %s\n' "$version" "$packages" >"$ready.tmp" && mv "$ready.tmp" "$ready"
fi

# The package and the vector, copied in (no mounts of the repository); .build stays inside the
# root between runs, so a warm check compiles only what changed.
work="$rootfs/work/mobile"
mkdir -p "$work/ios" "$work/test-vectors"
rsync -a --delete --exclude=/.build --exclude=/.swiftpm --exclude=/ArsimBench \
    "$here/" "$work/ios/"
rsync -a --delete "$mobile/test-vectors/" "$work/test-vectors/"
install -m 0644 "$vector" "$work/checked-vector.json"

log="$base/last-run.log"
say "$(head -n 1 "$ready"); vector $vector"
# In the background + wait: a SIGTERM to this script alone then stops it at once (bash runs
# traps only after a foreground command ends); with pipefail the job's status is in_root's
# (tee's is 0): 3 = swift build failed, 4 = swift test failed.
in_root "$rootfs" env ARSIM_METRICS_VECTOR=/work/mobile/checked-vector.json bash -c '
    cd /work/mobile/ios || exit 2
    swift build 2>&1 || exit 3
    swift test 2>&1 || exit 4
' 2>&1 | tee "$log" &
rc=0
wait $! || rc=$?

summary="$(grep -E '^[[:space:]]*Executed [0-9]+ tests?' "$log" | tail -n 1 | sed 's/^[[:space:]]*//' || true)"
if [ "$rc" = 2 ]; then
    say "error: could not run in the root $rootfs (log $log)"; exit 3
elif [ "$rc" = 3 ]; then
    say "FAILED: swift build (compile errors above; log $log)"; exit 1
elif [ "$rc" != 0 ]; then
    say "FAILED: swift test exit $rc: ${summary:-no test summary} (log $log)"
    grep -E 'error: |XCTAssert|XCTFail|failed \(' "$log" | head -n 20 | sed 's/^/  /' || true
    exit 1
elif grep -qE "Test Case .* skipped|with [1-9][0-9]* tests? skipped" "$log"; then
    say "FAILED: a test was skipped (log $log)"
    grep -E "skipped" "$log" | head -n 5 | sed 's/^/  /' || true
    exit 1
elif [ -z "$summary" ] || [[ "$summary" == "Executed 0 tests"* ]]; then
    say "FAILED: no XCTest ran (log $log)"; exit 1
fi
say "OK: ${summary:-tests passed} ($((SECONDS - started)) s)"
