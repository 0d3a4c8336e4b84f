#!/usr/bin/env bash
# Build fleetauth with the dist profile for one target and pack it as a release asset:
#   OUT_DIR/fleetauth-<target>.tar.gz         fleetauth-<target>/{fleetauth,README.md,LICENSE}
#   OUT_DIR/fleetauth-<target>.tar.gz.sha256  "<sha256>  fleetauth-<target>.tar.gz" (sha256sum -c)
#
# Usage: bash .github/release/package.sh OUT_DIR [TARGET]
#   TARGET defaults to the host triple (rustc -vV). The release workflow calls this script for
#   every target it publishes; it is the one place that builds an archive and its checksum.
#
# Environment:
#   FLEETAUTH_PACKAGE_BINARY  pack this already-built binary instead of running cargo (tests)
#   FLEETAUTH_BUILD_COMMIT    the commit `fleetauth --version` names (default: git rev-parse HEAD)
#   CARGO                     the cargo to run (default: cargo)
#
# Written for bash 3.2 (macOS) and both GNU and BSD tar.
set -euo pipefail

die() {
    printf 'package.sh: error: %s\n' "$*" >&2
    exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: bash .github/release/package.sh OUT_DIR [TARGET]"
out_dir=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo=${CARGO:-cargo}

if [ $# -eq 2 ]; then
    target=$2
else
    target=$(rustc -vV | sed -n 's/^host: //p')
    [ -n "$target" ] || die "cannot read the host triple from 'rustc -vV'; pass TARGET"
fi
case $target in
    *-windows-*)
        die "$target: fleetauth does not build for Windows yet (see README, Install)" ;;
esac

if [ -z "${FLEETAUTH_BUILD_COMMIT:-}" ]; then
    FLEETAUTH_BUILD_COMMIT=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
fi
export FLEETAUTH_BUILD_COMMIT
export FLEETAUTH_BUILD_TARGET=$target

if [ -n "${FLEETAUTH_PACKAGE_BINARY:-}" ]; then
    binary=$FLEETAUTH_PACKAGE_BINARY
    [ -x "$binary" ] || die "FLEETAUTH_PACKAGE_BINARY=$binary is not an executable file"
else
    # No CPU jitter entropy source in AWS-LC: it costs a one-grant process ~40 ms of CPU at its
    # first random number (benches/one_grant_cpu.sh); the OS source (getrandom) still seeds it.
    (cd "$root" && AWS_LC_SYS_NO_JITTER_ENTROPY=1 "$cargo" build --locked --profile dist --target "$target")
    target_dir=$(cd "$root" && "$cargo" metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    [ -n "$target_dir" ] || die "cannot find cargo's target directory"
    binary=$target_dir/$target/dist/fleetauth
fi
[ -f "$binary" ] || die "no binary at $binary"

name=fleetauth-$target
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/fleetauth-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "$binary" "$stage/$name/fleetauth"
chmod 0755 "$stage/$name/fleetauth"
cp "$root/README.md" "$root/LICENSE" "$stage/$name/"
chmod 0644 "$stage/$name/README.md" "$stage/$name/LICENSE"

# Same inputs, same bytes where GNU tar allows it: sorted names, no owners, a fixed mtime.
archive=$out_dir/$name.tar.gz
if tar --version 2>/dev/null | grep 'GNU tar' >/dev/null; then
    mtime=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
        -cf - "$name" | gzip -9n >"$archive.part"
else
    tar -C "$stage" -cf - "$name" | gzip -9n >"$archive.part"
fi
mv "$archive.part" "$archive"

if command -v sha256sum >/dev/null 2>&1; then
    (cd "$out_dir" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
else
    (cd "$out_dir" && shasum -a 256 "$name.tar.gz" >"$name.tar.gz.sha256")
fi

printf '%s\n' "$archive" "$archive.sha256"
