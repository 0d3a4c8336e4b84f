//! Micro benchmarks (criterion): assertion signing on one core, and reading 100,000-row org
//! lists as CSV and JSON. Run: `cargo bench --bench micro`; `benches/signing_vs_openssl.sh`
//! runs the signing group and `openssl speed rsa2048` in one go and prints the ratio.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test or benchmark fails by panicking"
)]
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use fleetauth::assertion::Signer;
use fleetauth::credentials::{self, KeyOrigin};
use fleetauth::input::{self, Format};

fn signer() -> Signer {
    let pem = fleetauth::emulator::test_keys::PRIVATE_KEY
        .as_bytes()
        .to_vec();
    let key =
        credentials::parse(pem, KeyOrigin::File("server.key".into())).expect("the test key parses");
    Signer::new(
        key,
        "3MVG9bench".into(),
        "https://test.salesforce.com".into(),
    )
}

fn signing(c: &mut Criterion) {
    let signer = signer();
    let mut group = c.benchmark_group("assertion");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign RS256 (2048-bit)", |b| {
        b.iter(|| {
            signer
                .sign(std::hint::black_box("test-abc123@example.com"))
                .expect("signs")
        })
    });
    // The floor under the assertion: the bare RSA signature, same key, parsed once.
    let key = signer.key();
    group.bench_function("RSA_PKCS1_SHA256 alone", |b| {
        b.iter(|| {
            key.sign_rs256(std::hint::black_box(b"header.claims"))
                .expect("signs")
        })
    });
    group.finish();
}

const ROWS: usize = 100_000;

fn lists(c: &mut Criterion) {
    let csv: String = std::iter::once("username,alias,instanceUrl\n".to_string())
        .chain((0..ROWS).map(|i| {
            format!("test-{i:08}@example.com,scratch{i},https://org{i}.scratch.my.salesforce.com\n")
        }))
        .collect();
    let json = serde_json::to_string(
        &(0..ROWS)
            .map(|i| serde_json::json!({"username": format!("test-{i:08}@example.com"), "alias": format!("scratch{i}")}))
            .collect::<Vec<_>>(),
    )
    .expect("serializes");
    let mut group = c.benchmark_group("list");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("csv 100k rows", |b| {
        b.iter(|| {
            input::parse("orgs.csv", std::hint::black_box(&csv), Format::Csv).expect("parses")
        })
    });
    group.bench_function("json 100k rows", |b| {
        b.iter(|| {
            input::parse("orgs.json", std::hint::black_box(&json), Format::Json).expect("parses")
        })
    });
    group.finish();
}

criterion_group!(benches, signing, lists);
criterion_main!(benches);
