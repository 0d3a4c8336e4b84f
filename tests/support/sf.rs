//! The pinned Salesforce CLI for the compatibility tests: installed once by npm from the
//! committed `.ci/sf/package.json` and lockfile into a cache folder, then run with `HOME` in a
//! temp dir. A missing `npm` or a failed install fails the test (never a skip).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `sf` executable, installing it on first use.
pub fn sf_bin() -> &'static Path {
    static SF: OnceLock<PathBuf> = OnceLock::new();
    SF.get_or_init(|| {
        if let Some(bin) = std::env::var_os("FLEETAUTH_SF_BIN") {
            return PathBuf::from(bin);
        }
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/sf");
        let lock = std::fs::read(source.join("package-lock.json")).expect(".ci/sf/package-lock.json is committed");
        let cache_root = std::env::var_os("FLEETAUTH_SF_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fleetauth")))
            .expect("HOME or FLEETAUTH_SF_CACHE is set");
        // One cache folder (shared with benches/side_by_side.sh), reinstalled when the lockfile changes.
        let dir = cache_root.join("sf-cli");
        let bin = dir.join("node_modules/.bin/sf");
        if bin.is_file() && std::fs::read(dir.join("package-lock.json")).is_ok_and(|l| l == lock) {
            return bin;
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the sf cache folder");

        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), dir.join(file)).expect("copy the sf package files");
        }
        eprintln!("installing the pinned Salesforce CLI into {} (once)", dir.display());
        // Scrubbed like every child of the suite; npm keeps the caller's own npm settings
        // (`~/.npmrc` through HOME, `npm_config_*`), the one way it reaches a registry.
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| dir.clone());
        let mut npm = super::scrubbed("npm", &home);
        npm.envs(std::env::vars_os().filter(|(name, _)| {
            name.to_str()
                .is_some_and(|n| n.to_ascii_lowercase().starts_with("npm_config_"))
        }));
        let status = npm
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed to run the Salesforce CLI compatibility tests (Node 20 with npm)");
        assert!(status.success(), "npm ci of the pinned Salesforce CLI failed ({status})");
        assert!(bin.is_file(), "npm ci did not produce {}", bin.display());
        bin
    })
}

/// An `sf` command with `HOME` = `home` and the environment the tests need, nothing else of
/// the caller's ([`super::scrubbed`]).
pub fn sf(home: &Path, args: &[&str]) -> Command {
    let bin = sf_bin();
    let path = format!(
        "{}:{}",
        bin.parent()
            .expect("sf lives in node_modules/.bin")
            .display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = super::scrubbed(bin, home);
    cmd.args(args)
        .current_dir(home)
        .env("PATH", path)
        .env("SF_DISABLE_TELEMETRY", "true")
        .env("SF_AUTOUPDATE_DISABLE", "true")
        .env("SF_SKIP_NEW_VERSION_CHECK", "true");
    cmd
}

/// Run `sf ... --json` and parse its stdout.
pub fn sf_json(home: &Path, args: &[&str]) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let out = sf(home, &all).output().expect("sf runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "sf {args:?} printed no JSON ({e}); stdout: {stdout}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
