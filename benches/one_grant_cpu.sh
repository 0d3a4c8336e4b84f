#!/usr/bin/env bash
# The CPU a one-grant process costs: `fleetauth token ORG --max-age 0s` (start-up, key load,
# trust store, one signed assertion, one token request, the auth file), averaged over RUNS
# processes against one `fleetauth emulate`. Given a second binary, the two alternate in the
# same run, so their ratio holds on a shared machine where the absolute figures do not.
#
#   benches/one_grant_cpu.sh BINARY [OTHER_BINARY] [RUNS]
#
# For example the shipped build against one that keeps AWS-LC's CPU jitter entropy source:
#   AWS_LC_SYS_NO_JITTER_ENTROPY=1 CARGO_TARGET_DIR=/tmp/nj cargo build --release
#   cargo build --release
#   benches/one_grant_cpu.sh /tmp/nj/release/fleetauth target/release/fleetauth
set -euo pipefail
cd "$(dirname "$0")/.."
first=$(realpath "$1")
second=${2:+$(realpath "$2")}
runs=${3:-40}
work=$(mktemp -d)
trap 'kill "$emulator" 2>/dev/null; rm -rf "$work"' EXIT

port=$((20000 + RANDOM % 20000))
"$first" emulate --port "$port" >"$work/emulator.log" 2>&1 &
emulator=$!
for _ in $(seq 50); do grep -q "http://127.0.0.1:$port" "$work/emulator.log" && break; sleep 0.1; done
keys=(-i 3MVG9fleetauthDEMOconsumerKEY -f "$PWD/fixtures/keys/server.key" -r "http://127.0.0.1:$port")
printf 'username,alias\ntest-bench@example.com,ci1\n' >"$work/orgs.csv"
"$first" grant "$work/orgs.csv" "${keys[@]}" --out-dir "$work/out" -q

# Prints the mean CPU (user + system) and wall time of one process, in ms.
measure() {
    /usr/bin/time -f "%U %S %e" -o "$work/time" bash -c '
        for _ in $(seq "$1"); do
            env -i PATH=/usr/bin:/bin HOME="$2" "$3" token ci1 "${@:4}" --out-dir "$2/out" --max-age 0s >/dev/null
        done' _ "$runs" "$work" "$1" "${keys[@]}"
    awk -v n="$runs" '{printf "%.1f ms CPU, %.1f ms wall per process", ($1 + $2) * 1000 / n, $3 * 1000 / n}' "$work/time"
}
for round in 1 2; do
    echo "round $round: $1: $(measure "$first")"
    [ -n "$second" ] && echo "round $round: $2: $(measure "$second")"
done
