//! Python tools the export tests read with (python-dotenv, CumulusCI): each installed once by
//! pip from a pinned requirements file in `.ci/python/` into a cached virtualenv, reinstalled
//! when that file changes. A missing `python3` or a failed install fails the test (never a skip).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The `bin/` folder of the virtualenv for `.ci/python/<name>.txt`, installing it on first use.
pub fn venv_bin(name: &str) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let done = DONE.get_or_init(Default::default);
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bin) = done.get(name) {
        return bin.clone();
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(".ci/python/{name}.txt"));
    let requirements =
        std::fs::read(&source).unwrap_or_else(|e| panic!("{} is committed: {e}", source.display()));
    let cache_root = std::env::var_os("FLEETAUTH_SF_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fleetauth")))
        .expect("HOME or FLEETAUTH_SF_CACHE is set");
    let dir = cache_root.join(format!("venv-{name}"));
    let bin = dir.join("bin");
    let stamp = dir.join("requirements.txt");
    std::fs::create_dir_all(&cache_root).expect("create the cache folder");
    // Another test binary, or a second checkout's suite, may be installing the same venv:
    // one at a time (the lock is released when the file closes).
    let lock = std::fs::File::create(cache_root.join(format!("venv-{name}.lock")))
        .expect("create the venv's lock file");
    // SAFETY: flock on a descriptor this function owns (std's File::lock is past our MSRV).
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(
        locked,
        0,
        "lock the venv: {}",
        std::io::Error::last_os_error()
    );
    if bin.join("python").is_file() && std::fs::read(&stamp).is_ok_and(|r| r == requirements) {
        done.insert(name.into(), bin.clone());
        return bin;
    }
    // The stamp is written last: an install cut short is redone next time.
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "installing .ci/python/{name}.txt into {} (once)",
        dir.display()
    );
    // The interpreter behind `python3` (a pyenv shim needs the caller's HOME to find it).
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 must be installed to run the export tests (python3 -m venv)");
    let python = String::from_utf8_lossy(&python.stdout).trim().to_string();
    // Scrubbed like every child of the suite; pip keeps the caller's own pip settings
    // (`PIP_*`: certificates, indexes), the one way it reaches the registry.
    let home = tempfile::tempdir().expect("temp HOME");
    let status = super::scrubbed(&python, home.path())
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "python3 -m venv failed ({status})");
    let status = super::scrubbed(bin.join("pip"), home.path())
        .envs(
            std::env::vars_os()
                .filter(|(name, _)| name.to_str().is_some_and(|n| n.starts_with("PIP_"))),
        )
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
    done.insert(name.into(), bin.clone());
    bin
}
