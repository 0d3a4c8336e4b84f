#!/usr/bin/env bash
# Assertion signing against `openssl speed rsa2048`, one core, in the same run: the target is
# fleetauth's RS256 assertion at most 1.1x OpenSSL's RSA-2048 sign time.
#
#   benches/signing_vs_openssl.sh
#
# Runs OpenSSL, then the criterion `assertion` group (release), then OpenSSL again, and compares
# criterion's median estimates (from target/criterion) with the mean of the two OpenSSL runs, so a
# load change during the run shows as a gap between the two OpenSSL figures.
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
openssl_us=$(awk -v a="$before_us" -v b="$after_us" 'BEGIN{printf "%.1f", (a + b) / 2}')

median_us() {
    python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["median"]["point_estimate"] / 1000))' "$1"
}
assertion_us=$(median_us "$target/criterion/assertion/sign RS256 (2048-bit)/new/estimates.json")
bare_us=$(median_us "$target/criterion/assertion/RSA_PKCS1_SHA256 alone/new/estimates.json")

echo "openssl speed rsa2048 sign      ${openssl_us} us   (before ${before_us}, after ${after_us})"
echo "fleetauth RSA signature alone   ${bare_us} us   ($(awk -v a="$bare_us" -v b="$openssl_us" 'BEGIN{printf "%.2f", a/b}')x openssl)"
echo "fleetauth assertion (JWT)       ${assertion_us} us   ($(awk -v a="$assertion_us" -v b="$openssl_us" 'BEGIN{printf "%.2f", a/b}')x openssl, target <= 1.10x)"
