//! fleetauth's outputs checked against the schemas in `fixtures/schema/`: JSON Schema 2020-12
//! (python-jsonschema, the reference implementation) and XSD 1.0 (xmlschema), both from
//! `.ci/python/schema.txt`, installed once by pip into a cached virtualenv and reinstalled when
//! that file changes. One venv serves both checks and adds nothing to the Rust build. A
//! missing `python3` or a failed install fails the test (never a skip).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv's `python`, installing it on first use.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let source = root().join(".ci/python/schema.txt");
        let requirements = std::fs::read(&source).expect(".ci/python/schema.txt is committed");
        let caller_home = std::env::var_os("HOME").map(PathBuf::from);
        let cache_root = std::env::var_os("FLEETAUTH_SF_CACHE")
            .map(PathBuf::from)
            .or_else(|| caller_home.as_ref().map(|h| h.join(".cache/fleetauth")))
            .expect("HOME or FLEETAUTH_SF_CACHE is set");
        let dir = cache_root.join("venv-schema");
        let python = dir.join("bin/python");
        let stamp = dir.join("requirements.txt");
        if python.is_file() && std::fs::read(&stamp).is_ok_and(|r| r == requirements) {
            return python;
        }
        // The stamp is written last: an install cut short is redone next time.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&cache_root).expect("create the cache folder");
        eprintln!(
            "installing .ci/python/schema.txt into {} (once)",
            dir.display()
        );
        let home = caller_home.unwrap_or_else(|| cache_root.clone());
        let status = super::scrubbed("python3", &home)
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 must be installed to check the outputs' schemas (python3 -m venv)");
        assert!(status.success(), "python3 -m venv failed ({status})");
        // Scrubbed like every child; pip keeps the caller's own pip settings (`PIP_*`,
        // `~/.config/pip` through HOME), the one way it reaches a registry.
        let mut pip = super::scrubbed(dir.join("bin/pip"), &home);
        pip.envs(
            std::env::vars_os()
                .filter(|(name, _)| name.to_str().is_some_and(|n| n.starts_with("PIP_"))),
        );
        let status = pip
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&source)
            .status()
            .expect("pip runs");
        assert!(
            status.success(),
            "pip install -r {} failed ({status})",
            source.display()
        );
        std::fs::write(&stamp, &requirements).expect("stamp the venv");
        python
    })
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
