#!/usr/bin/env bash
# Side by side: a sequential `sf org login jwt` loop vs `fleetauth grant --sf` for the same orgs,
# both against the emulator on 127.0.0.1, in one run. Usage: benches/side_by_side.sh [N ...]
# (default: 10 50). Needs Node 20 with npm (the pinned sf is installed once into a cache folder).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10 50)

cargo build --release --quiet
bin=target/release/fleetauth
# The same cache folder as the compatibility tests: reinstalled when the lockfile changes.
sf_dir="${FLEETAUTH_SF_CACHE:-$HOME/.cache/fleetauth}/sf-cli"
if [ ! -x "$sf_dir/node_modules/.bin/sf" ] || ! cmp -s .ci/sf/package-lock.json "$sf_dir/package-lock.json"; then
  rm -rf "$sf_dir" && mkdir -p "$sf_dir" && cp .ci/sf/package.json .ci/sf/package-lock.json "$sf_dir/"
  (cd "$sf_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
export PATH="$sf_dir/node_modules/.bin:$PATH" SF_USE_GENERIC_UNIX_KEYCHAIN=true SF_DISABLE_TELEMETRY=true \
  SF_AUTOUPDATE_DISABLE=true SF_SKIP_NEW_VERSION_CHECK=true

work=$(mktemp -d); trap 'kill $emu_pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" emulate --port 0 > "$work/url" 2>/dev/null & emu_pid=$!
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(cat "$work/url")
key=$PWD/fixtures/keys/server.key
cid=3MVG9fleetauthDEMOconsumerKEY
now() { date +%s.%N; }

printf '%-6s %14s %14s %8s\n' orgs "sf loop (s)" "fleetauth (s)" ratio
for n in "${sizes[@]}"; do
  list="$work/orgs-$n.csv"; : > "$list"
  for i in $(seq "$n"); do echo "test-bench$n-$i@example.com" >> "$list"; done
  mkdir -p "$work/sf-$n" "$work/fa-$n"
  t0=$(now)
  while read -r u; do
    HOME="$work/sf-$n" sf org login jwt -o "$u" -i "$cid" -f "$key" -r "$url" > /dev/null 2>&1
  done < "$list"
  t1=$(now)
  "$bin" grant "$list" -i "$cid" -f "$key" -r "$url" --sf --sf-home "$work/fa-$n" --out-dir "$work/fa-$n/out" \
    --concurrency 16 --rate 100 --quiet
  t2=$(now)
  ok_sf=$(ls "$work/sf-$n/.sfdx" | grep -c '@') ; ok_fa=$(ls "$work/fa-$n/.sfdx" | grep -c '@')
  [ "$ok_sf" -eq "$n" ] && [ "$ok_fa" -eq "$n" ] || { echo "not every org was authorized ($ok_sf, $ok_fa of $n)"; exit 1; }
  awk -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" \
    'BEGIN { a = t1 - t0; b = t2 - t1; printf "%-6d %14.2f %14.2f %7.1fx\n", n, a, b, a / b }'

done
