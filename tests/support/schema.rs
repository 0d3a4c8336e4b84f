//! fleetauth's outputs checked against the schemas in `fixtures/schema/`: JSON Schema 2020-12
//! (python-jsonschema, the reference implementation) and XSD 1.0 (xmlschema), both from
//! `.ci/python/schema.txt`, installed once by pip into a cached virtualenv (tests/support/python.rs). One venv serves both checks and adds nothing to the Rust build. A
//! missing `python3` or a failed install fails the test (never a skip).

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv's `python`, installing it on first use.
fn python() -> PathBuf {
    super::python::venv_bin("schema").join("python")
}

/// Run `.ci/python/validate.py` on `args`: `Ok` when valid, `Err(the errors)` when not.
fn validate(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let home = tempfile::tempdir().expect("a temp HOME");
    let out = super::scrubbed(python(), home.path())
        .arg(root().join(".ci/python/validate.py"))
        .args(args)
        .output()
        .expect("the validator runs");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(said),
        _ => panic!("the validator failed to run ({}): {said}", out.status),
    }
}

/// `doc` against `fixtures/schema/<name>.schema.json`.
pub fn json_errors(name: &str, doc: &serde_json::Value) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec(doc).expect("JSON")).expect("write the document");
    let schemas = root().join("fixtures/schema");
    validate(&[
        "json".as_ref(),
        schemas.as_os_str(),
        name.as_ref(),
        path.as_os_str(),
    ])
}

/// Panic unless `doc` is valid against `fixtures/schema/<name>.schema.json`.
pub fn assert_json_valid(name: &str, doc: &serde_json::Value) {
    if let Err(errors) = json_errors(name, doc) {
        panic!("not a valid {name}: {errors}\n{doc:#}");
    }
}

/// The XML file `doc` against `fixtures/schema/<xsd>`.
pub fn xml_errors(xsd: &str, doc: &Path) -> Result<(), String> {
    let xsd = root().join("fixtures/schema").join(xsd);
    validate(&["xsd".as_ref(), xsd.as_os_str(), doc.as_os_str()])
}
