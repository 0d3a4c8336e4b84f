//! The files a run writes at the user's word (`--report`, `--summary-md`, `--junit`,
//! `$GITHUB_STEP_SUMMARY`), checked before anything is sent against the files the run reads or
//! keeps: the out dir's auth files, its lock, report.json and failed.csv, the org list, the key,
//! sf's state, and each other. Paths are compared canonicalized (`out/../out/report.json` is
//! `out/report.json`), and an existing file also by device and inode (a hard link is the same
//! file).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{is_auth_file_name, OutDir, LOCK_FILE};

/// A file, as the file system knows it.
#[derive(Debug, Clone)]
struct Place {
    /// The canonical directory and the file name.
    path: PathBuf,
    /// Device and inode, when the file exists.
    id: Option<(u64, u64)>,
}

impl Place {
    fn of(path: &Path) -> Self {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let canonical = match (absolute.parent(), absolute.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(dir)
                .map(|dir| dir.join(name))
                .unwrap_or_else(|_| absolute.clone()),
            _ => absolute.clone(),
        };
        let id = std::fs::metadata(&canonical)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Self {
            path: canonical,
            id,
        }
    }

    fn is(&self, other: &Place) -> bool {
        self.path == other.path || (self.id.is_some() && self.id == other.id)
    }

    fn dir(&self) -> Option<&Path> {
        self.path.parent()
    }
}

/// The files no output may land on, and the outputs claimed so far.
#[derive(Debug)]
pub struct Outputs {
    out_dir: PathBuf,
    reserved: Vec<(Place, String)>,
    dirs: Vec<(PathBuf, String)>,
    claimed: Vec<(Place, String)>,
}

impl Outputs {
    /// The files of `out` that no output may replace: its lock and failed.csv (report.json is
    /// claimed by `--report`, or reserved with [`Outputs::reserve`]), and every name an org's
    /// auth file has or may get.
    pub fn new(out: &OutDir) -> Self {
        let out_dir = std::fs::canonicalize(out.path()).unwrap_or_else(|_| out.path().into());
        let mut outputs = Self {
            out_dir,
            reserved: Vec::new(),
            dirs: Vec::new(),
            claimed: Vec::new(),
        };
        outputs.reserve(&out.path().join(LOCK_FILE), "the out dir's lock file");
        outputs.reserve(
            &out.path().join("failed.csv"),
            "the out dir's failed.csv, the list of the orgs to retry",
        );
        outputs
    }

    /// No output may be `path`, which is `what`.
    pub fn reserve(&mut self, path: &Path, what: &str) {
        self.reserved.push((Place::of(path), what.to_string()));
    }

    /// No output may go into `dir`, which is `what`.
    pub fn reserve_dir(&mut self, dir: &Path, what: &str) {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.into());
        self.dirs.push((dir, what.to_string()));
    }

    /// `path` is where `flag` writes: refused (with why and the fix) if it is a file the run
    /// reads or keeps, or another output's.
    pub fn claim(&mut self, flag: &str, path: &Path) -> Result<(), String> {
        let place = Place::of(path);
        let refuse = |what: &str| {
            Err(format!(
                "{flag} {}: that is {what}, and the report would replace it; pick another path (nothing was sent)",
                path.display()
            ))
        };
        if let Some((_, what)) = self.reserved.iter().find(|(p, _)| p.is(&place)) {
            return refuse(what);
        }
        if let Some((_, other)) = self.claimed.iter().find(|(p, _)| p.is(&place)) {
            return refuse(&format!("also where {other} writes"));
        }
        let dir = place.dir();
        let name = place
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if dir == Some(self.out_dir.as_path()) && is_auth_file_name(name) {
            return refuse("the name of an org's auth file in the out dir");
        }
        if let Some((_, what)) = self.dirs.iter().find(|(d, _)| Some(d.as_path()) == dir) {
            return refuse(&format!("in {what}"));
        }
        self.claimed.push((place, flag.to_string()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_on_the_out_dirs_files_the_list_or_each_other_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutDir::open(&tmp.path().join("out")).unwrap();
        let list = tmp.path().join("orgs.csv");
        std::fs::write(&list, "a@x.com\n").unwrap();
        let link = tmp.path().join("same.csv");
        std::fs::hard_link(&list, &link).unwrap();
        let mut outputs = Outputs::new(&out);
        outputs.reserve(&list, "the org list");
        outputs
            .claim("--report", &out.path().join("report.json"))
            .unwrap();
        for (flag, path) in [
            ("--junit", out.path().join("report.json")),
            ("--junit", out.path().join("../out/report.json")),
            ("--junit", out.path().join(LOCK_FILE)),
            ("--junit", out.path().join("failed.csv")),
            ("--junit", out.path().join("B@X.com.json")),
            ("--junit", link.clone()),
        ] {
            let err = outputs.claim(flag, &path).unwrap_err();
            assert!(err.contains("nothing was sent"), "{err}");
        }
        outputs
            .claim("--junit", &out.path().join("junit.xml"))
            .unwrap();
        outputs
            .claim("--summary-md", &tmp.path().join("summary.md"))
            .unwrap();
        let err = outputs
            .claim("$GITHUB_STEP_SUMMARY", &tmp.path().join("summary.md"))
            .unwrap_err();
        assert!(err.contains("--summary-md"), "{err}");
    }
}
