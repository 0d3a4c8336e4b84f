#!/usr/bin/env bash
# Print CHANGELOG.md's section for VERSION (the lines under "## [VERSION]" up to the next
# "## [" heading): the GitHub Release's notes. Fails when there is no such section or it is empty,
# so a tag is never released without its changelog entry.
#
# Usage: bash .github/release/notes.sh VERSION [CHANGELOG]
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || {
    echo "usage: bash .github/release/notes.sh VERSION [CHANGELOG]" >&2
    exit 2
}
version=$1
changelog=${2:-$(cd "$(dirname "$0")/../.." && pwd)/CHANGELOG.md}
notes=$(awk -v heading="## [$version]" '
    /^## \[/ { if (found) exit; if (index($0, heading) == 1) { found = 1; next } }
    found { print }
' "$changelog")
if [ -z "$(printf '%s' "$notes" | tr -d '[:space:]')" ]; then
    echo "notes.sh: error: $changelog has no entries under '## [$version]': move the Unreleased entries there before tagging v$version" >&2
    exit 1
fi
printf '%s\n' "$notes"
