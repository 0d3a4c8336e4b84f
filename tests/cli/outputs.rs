//! The suite's own honesty and the outputs' contracts: every child in a scrubbed environment,
//! report.json and the `--json` envelopes against their checked-in JSON Schemas, JUnit against
//! junit-10.xsd, millisecond timestamps, and what a fleet-wide stop prints.

use std::collections::BTreeSet;

use crate::support::*;

#[test]
fn a_child_of_the_suite_gets_only_path_a_temp_home_and_the_keychain_switch() {
    let home = tempfile::tempdir().unwrap();
    let out = scrubbed("env", home.path()).output().expect("env runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["HOME", "PATH", "SF_USE_GENERIC_UNIX_KEYCHAIN", "TMPDIR"]),
        "GITHUB_*, proxies, SF_* and SFDX_* of the caller never reach a child: {text}"
    );
    let home_line = format!("HOME={}", home.path().display());
    assert!(text.lines().any(|l| l == home_line), "{text}");
}
