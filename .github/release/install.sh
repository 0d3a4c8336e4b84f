#!/bin/sh
# Install a fleetauth release binary, verified against its published SHA-256.
#
#   curl -sSfL https://github.com/OWNER/fleetauth/releases/latest/download/install.sh | sh
#   curl -sSfL .../install.sh | sh -s -- --version 0.1.0 --to /usr/local/bin
#
# Options:
#   --version X.Y.Z   the release to install (or FLEETAUTH_VERSION); default: the latest release
#   --target TRIPLE   the build to install; default: this machine's (musl on Linux)
#   --to DIR          where to put the binary; default: ~/.local/bin
#   -h, --help        this text
# Environment:
#   FLEETAUTH_VERSION       as --version
#   FLEETAUTH_RELEASES_URL  where the releases are (a mirror); default: the GitHub releases of
#                           the repository this script was published from
#
# It downloads BASE/download/vX.Y.Z/fleetauth-TARGET.tar.gz (or, without a version,
# BASE/latest/download/...) and its .sha256, checks the archive against it before extracting
# anything, and installs nothing when a step fails. It makes no GitHub API call.
# POSIX sh: runs under dash, bash, zsh's sh, BusyBox ash and macOS /bin/sh.
set -eu

# The release workflow writes the repository it publishes from (OWNER/NAME) on the next line.
repository=
# The targets every release publishes (release.yml's matrix).
published="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin"

say() {
    printf 'install.sh: %s\n' "$*" >&2
}

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" 2>/dev/null ||
        echo "usage: install.sh [--version X.Y.Z] [--target TRIPLE] [--to DIR]"
}

version=${FLEETAUTH_VERSION:-}
target=
to=
while [ $# -gt 0 ]; do
    case $1 in
        --version | --target | --to)
            [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"
            case $1 in
                --version) version=$2 ;;
                --target) target=$2 ;;
                --to) to=$2 ;;
            esac
            shift 2
            ;;
        --version=* | --target=* | --to=*)
            value=${1#*=}
            [ -n "$value" ] || die "${1%%=*} needs a value (see --help)"
            case $1 in
                --version=*) version=$value ;;
                --target=*) target=$value ;;
                --to=*) to=$value ;;
            esac
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            die "unknown argument '$1' (options: --version X.Y.Z, --target TRIPLE, --to DIR)"
            ;;
    esac
done

# The version and the target become URL path segments: accept only their own shapes.
version=${version#v}
if [ -n "$version" ]; then
    case $version in
        *[!0-9A-Za-z.+-]* | .* | *..*)
            die "--version '$version' is not a version like 1.2.3" ;;
        [0-9]*.[0-9]*.[0-9]*) ;;
        *) die "--version '$version' is not a version like 1.2.3" ;;
    esac
fi

detect_target() {
    os=$(uname -s 2>/dev/null || echo unknown)
    arch=$(uname -m 2>/dev/null || echo unknown)
    case $arch in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *) arch=unsupported ;;
    esac
    case $os in
        Linux) os=unknown-linux-musl ;;
        Darwin)
            os=apple-darwin
            # An x86_64 shell under Rosetta on Apple silicon: the native build is the better one.
            if [ "$arch" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null)" = 1 ]; then
                arch=aarch64
            fi
            ;;
        *) os=unsupported ;;
    esac
    if [ "$os" = unsupported ] || [ "$arch" = unsupported ]; then
        die "no fleetauth build for this platform ($(uname -s 2>/dev/null) $(uname -m 2>/dev/null)). Releases publish: $published. Pass --target TRIPLE to pick one, or build from source: cargo install --locked --git <repository URL>"
    fi
    echo "$arch-$os"
}

if [ -z "$target" ]; then
    target=$(detect_target)
fi
case $target in
    *[!A-Za-z0-9_.-]* | .* | *..*) die "--target '$target' is not a target triple like x86_64-unknown-linux-musl" ;;
esac

if [ -z "$to" ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set: pass --to DIR"
    to=$HOME/.local/bin
fi

base=${FLEETAUTH_RELEASES_URL:-}
if [ -z "$base" ]; then
    [ -n "$repository" ] || die "this copy of install.sh names no repository (it was not taken from a release): set FLEETAUTH_RELEASES_URL=https://github.com/OWNER/fleetauth/releases, or download install.sh from a release"
    base=https://github.com/$repository/releases
fi
base=${base%/}

archive=fleetauth-$target.tar.gz
if [ -n "$version" ]; then
    url=$base/download/v$version/$archive
    release="release v$version"
else
    url=$base/latest/download/$archive
    release="the latest release"
fi

if command -v curl >/dev/null 2>&1; then
    downloader=curl
elif command -v wget >/dev/null 2>&1; then
    downloader=wget
else
    die "neither curl nor wget is installed: install one of them (e.g. apt-get install curl, apk add curl)"
fi

if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1"; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1"; }
else
    die "neither sha256sum nor shasum is installed: install coreutils (or perl's shasum) to verify the download"
fi

# fetch URL FILE: download, and print the HTTP status ("000" when no full answer came).
fetch() {
    case $downloader in
        curl)
            # --proto: a redirect never takes an https download to plain http.
            if case $1 in https://*) true ;; *) false ;; esac then
                _code=$(curl -sSL --proto =https --retry 3 --retry-delay 1 -o "$2" -w '%{http_code}' "$1") || _code=000
            else
                _code=$(curl -sSL --retry 3 --retry-delay 1 -o "$2" -w '%{http_code}' "$1") || _code=000
            fi
            ;;
        wget)
            wget -S -q -T 30 -t 3 -O "$2" "$1" 2>"$tmp/headers" || true
            _code=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9]*\).*/\1/p' "$tmp/headers" | tail -n 1)
            ;;
    esac
    printf '%s' "${_code:-000}"
}

# download URL FILE WHAT WHY404: fetch or stop with an error that says what was missing.
download() {
    code=$(fetch "$1" "$2")
    case $code in
        200) ;;
        404) die "$3 not found at $1 (HTTP 404): $4" ;;
        000) die "cannot download $1: no answer ($downloader failed: check the network, a proxy, or FLEETAUTH_RELEASES_URL)" ;;
        *) die "cannot download $1: HTTP $code" ;;
    esac
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleetauth-install.XXXXXX") || die "cannot create a temp dir"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "downloading $url"
download "$url" "$tmp/$archive" "the fleetauth archive for $target" \
    "$release publishes no build for '$target' (or there is no such release). Releases publish: $published"
download "$url.sha256" "$tmp/$archive.sha256" "the checksum $archive.sha256" \
    "$release has no checksum for $archive, so it cannot be verified: nothing installed"

# Verify before extracting: the first word of the .sha256 file is the expected digest.
expected=$(sed -n '1s/^\([0-9A-Fa-f]\{64\}\)[ *	].*/\1/p' "$tmp/$archive.sha256" | tr 'A-F' 'a-f')
[ -n "$expected" ] || die "$url.sha256 holds no SHA-256 digest: nothing installed"
actual=$(sha256 "$tmp/$archive" | sed 's/ .*//')
if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $archive: expected $expected, got $actual. The download is corrupt or was tampered with: nothing installed"
fi

mkdir "$tmp/x"
tar -xzf "$tmp/$archive" -C "$tmp/x" || die "cannot extract $archive: nothing installed"
binary=$tmp/x/fleetauth-$target/fleetauth
[ -f "$binary" ] || die "$archive holds no fleetauth-$target/fleetauth: nothing installed"

mkdir -p "$to" || die "cannot create $to (pass --to DIR)"
to=$(cd "$to" && pwd)
# Copy next to the destination, then rename over it: a running old binary is never half-written.
cp "$binary" "$to/.fleetauth.$$" || die "cannot write to $to (pass --to DIR)"
chmod 0755 "$to/.fleetauth.$$"
mv -f "$to/.fleetauth.$$" "$to/fleetauth" || {
    rm -f "$to/.fleetauth.$$"
    die "cannot install $to/fleetauth"
}

if installed=$("$to/fleetauth" --version 2>/dev/null); then
    installed=$(printf '%s\n' "$installed" | sed -n 1p)
else
    installed="fleetauth for $target (it does not run on this machine)"
fi
echo "installed $installed to $to/fleetauth"
case :${PATH:-}: in
    *:"$to":*) ;;
    *) say "note: $to is not on PATH; add it: export PATH=\"$to:\$PATH\"" ;;
esac
