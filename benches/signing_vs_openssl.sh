#!/usr/bin/env bash
# Assertion signing against `openssl speed rsa2048`, one core, in the same run: the target is
# fleetauth's RS256 assertion at most 1.1x OpenSSL's RSA-2048 sign time.
#
#   benches/signing_vs_openssl.sh
#
# Runs OpenSSL, then the criterion `assertion` group (release), then OpenSSL again. Prints two
# comparisons: criterion's median against the mean of the two OpenSSL runs, and the fastest
# criterion sample against the faster OpenSSL run. On a shared machine other load only ever adds
# time, so the second is the less disturbed one; a gap between the two OpenSSL runs shows load
# changing during the run.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

# "rsa 2048 bits 0.000282s 0.000008s 3546.1 125000.0": sign time is the 4th field.
openssl_sign_us() {
    openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa +2048 bits/ {printf "%.1f", $4 * 1e6}'
}
cargo bench --bench micro --no-run >/dev/null 2>&1 || cargo bench --bench micro --no-run
before_us=$(openssl_sign_us)
cargo bench --bench micro -- assertion >/dev/null 2>&1 || { echo "cargo bench failed" >&2; exit 1; }
after_us=$(openssl_sign_us)

# Prints "<median µs> <fastest sample µs>" for one criterion benchmark.
criterion_us() {
    python3 - "$target/criterion/assertion/$1/new" <<'EOF'
import json, sys
d = sys.argv[1]
median = json.load(open(d + "/estimates.json"))["median"]["point_estimate"]
sample = json.load(open(d + "/sample.json"))
fastest = min(t / n for t, n in zip(sample["times"], sample["iters"]))
print("%.1f %.1f" % (median / 1000, fastest / 1000))
EOF
}
read -r assertion_median assertion_fastest < <(criterion_us "sign RS256 (2048-bit)")
read -r bare_median bare_fastest < <(criterion_us "RSA_PKCS1_SHA256 alone")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }
openssl_mean=$(awk -v a="$before_us" -v b="$after_us" 'BEGIN{printf "%.1f", (a + b) / 2}')
openssl_best=$(awk -v a="$before_us" -v b="$after_us" 'BEGIN{printf "%.1f", (a < b) ? a : b}')

echo "openssl speed rsa2048 sign   before ${before_us} us, after ${after_us} us"
echo "                             median / mean of openssl      fastest / faster openssl"
echo "fleetauth assertion (JWT)    ${assertion_median} us = $(ratio "$assertion_median" "$openssl_mean")x        ${assertion_fastest} us = $(ratio "$assertion_fastest" "$openssl_best")x   (target <= 1.10x)"
echo "RSA signature alone          ${bare_median} us = $(ratio "$bare_median" "$openssl_mean")x        ${bare_fastest} us = $(ratio "$bare_fastest" "$openssl_best")x"
