//! Stage: store. The output directory (0700) and one auth file per authorized org (0600),
//! each written atomically: a temp file in the same directory, fsync, rename, fsync of the
//! directory. Writes that arrive together are committed together by one thread (`commit`):
//! the files' fsyncs run side by side and each directory is fsynced once per batch, and a
//! write still returns only once its file is on disk. Rename replaces a symlink rather than
//! following it, and a temp file that never got renamed is removed.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

mod commit;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the output directory {path}: {error}; pick another with --out-dir")]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a directory; pick another with --out-dir")]
    NotADir { path: PathBuf },
    #[error("the output directory {path} is writable by other users (mode {mode:o}), and it receives access tokens; run `chmod 700 {path}` or pick another with --out-dir")]
    WorldWritable { path: PathBuf, mode: u32 },
    #[error("the output directory {path} belongs to another user (uid {uid}), and it receives access tokens; pick a directory of your own with --out-dir")]
    NotOwned { path: PathBuf, uid: u32 },
    #[error("the output directory {path} is a symbolic link; fleetauth writes access tokens only into a real directory: pass the directory it points to with --out-dir")]
    Symlink { path: PathBuf },
    #[error("cannot write into the output directory {path}: {error}; fix its permissions or pick another with --out-dir (nothing was sent)")]
    NotWritable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("another fleetauth run is using the output directory {path}; wait for it to finish, or give this run its own --out-dir (nothing was sent)")]
    Busy { path: PathBuf },
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The output directory, checked once, and held: one run per directory at a time.
#[derive(Debug, Clone)]
pub struct OutDir {
    path: PathBuf,
    /// The advisory lock (`.fleetauth.lock`), released when the last clone is dropped.
    _lock: Option<std::sync::Arc<fs::File>>,
}

/// The lock file every run takes in its output directory.
pub const LOCK_FILE: &str = ".fleetauth.lock";

impl OutDir {
    /// Create (0700) or open the directory and take its lock. An existing one must be a real
    /// directory of this user that no other user can write; it must be writable.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_waiting(path, std::time::Duration::ZERO)
    }

    /// [`OutDir::open`], waiting up to `patience` for another run to release the directory
    /// (`fleetauth token` waits: its work is short, and parallel CI steps ask at once).
    pub fn open_waiting(path: &Path, patience: std::time::Duration) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        loop {
            match Self::try_open(path) {
                Err(StoreError::Busy { .. }) if started.elapsed() < patience => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn try_open(path: &Path) -> Result<Self, StoreError> {
        let mut dir = Self::open_unlocked(path)?;
        let lock_path = path.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|error| StoreError::NotWritable {
                path: path.to_path_buf(),
                error,
            })?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            return Err(if error.kind() == std::io::ErrorKind::WouldBlock {
                StoreError::Busy {
                    path: path.to_path_buf(),
                }
            } else {
                StoreError::NotWritable {
                    path: path.to_path_buf(),
                    error,
                }
            });
        }
        // A file can be created and removed here: found now, not after every grant was made.
        tempfile::Builder::new()
            .prefix(".fleetauth-probe-")
            .tempfile_in(path)
            .map_err(|error| StoreError::NotWritable {
                path: path.to_path_buf(),
                error,
            })?;
        dir._lock = Some(std::sync::Arc::new(file));
        Ok(dir)
    }

    /// [`OutDir::open`] without the lock (for readers such as `check`).
    pub fn open_unlocked(path: &Path) -> Result<Self, StoreError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(StoreError::Symlink {
                    path: path.to_path_buf(),
                })
            }
            Ok(meta) if meta.is_dir() => {
                let mode = meta.mode() & 0o7777;
                if mode & 0o022 != 0 {
                    return Err(StoreError::WorldWritable {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
                // SAFETY: geteuid has no preconditions.
                let me = unsafe { libc::geteuid() };
                if meta.uid() != me {
                    return Err(StoreError::NotOwned {
                        path: path.to_path_buf(),
                        uid: meta.uid(),
                    });
                }
            }
            Ok(_) => {
                return Err(StoreError::NotADir {
                    path: path.to_path_buf(),
                })
            }
            Err(_) => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|error| StoreError::CreateDir {
                    path: path.to_path_buf(),
                    error,
                })?,
        }
        Ok(Self {
            path: path.to_path_buf(),
            _lock: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wait for every write queued so far, then remove the temp files that writes cut short
    /// left here (by a run killed mid-write): they may hold tokens. Needs the lock.
    pub async fn settle(&self) -> std::io::Result<usize> {
        if self._lock.is_none() {
            return Ok(0);
        }
        commit::drain().await;
        commit::remove_leftovers(&self.path)
    }

    /// Where the auth file of `username` goes. The username was checked by `input`: no
    /// separators, no leading dot, no NUL, short enough.
    pub fn auth_file(&self, username: &str) -> PathBuf {
        self.path.join(format!("{username}.json"))
    }

    /// Write `record` as `<username>.json`, mode 0600, atomically.
    pub fn write_auth(
        &self,
        username: &str,
        record: &AuthRecord<'_>,
    ) -> Result<PathBuf, StoreError> {
        let path = self.auth_file(username);
        write_atomic(&path, &record.to_json(), 0o600)?;
        Ok(path)
    }

    /// [`OutDir::write_auth`] from an async task: the same durable write, awaited.
    pub async fn write_auth_async(
        &self,
        username: &str,
        record: &AuthRecord<'_>,
    ) -> Result<PathBuf, StoreError> {
        let path = self.auth_file(username);
        commit::commit_async(commit::Job {
            path: path.clone(),
            content: commit::Content::Bytes(record.to_json(), 0o600),
            clobber: true,
        })
        .await
        .map_err(|error| StoreError::Write {
            path: path.clone(),
            error,
        })?;
        Ok(path)
    }
}

/// Write `bytes` to `path` through a temp file in the same directory: the path holds either
/// the old content or the new, never a part, and once this returns `Ok` the new content is on
/// disk (file and directory entry).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    write_via_temp(path, bytes, mode, true).map(|_| ())
}

/// [`write_atomic`] for several files (small ones: auth files), committed together.
pub fn write_atomic_all(files: Vec<(PathBuf, Vec<u8>)>, mode: u32) -> Vec<Result<(), StoreError>> {
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let jobs = files
        .into_iter()
        .map(|(path, bytes)| commit::Job {
            path,
            content: commit::Content::Bytes(bytes, mode),
            clobber: true,
        })
        .collect();
    commit::commit_all(jobs)
        .into_iter()
        .zip(paths)
        .map(|(result, path)| {
            result
                .map(drop)
                .map_err(|error| StoreError::Write { path, error })
        })
        .collect()
}

/// [`write_atomic`], but only if `path` does not exist yet (then `Ok(false)`): for files another
/// program may be creating at the same moment, where the first one must win.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, StoreError> {
    write_via_temp(path, bytes, mode, false)
}

fn write_via_temp(path: &Path, bytes: &[u8], mode: u32, clobber: bool) -> Result<bool, StoreError> {
    // Auth files and sf's entries go to the committer as they are; a large file (a report of
    // ten thousand orgs) is written here rather than copied.
    const SMALL: usize = 64 * 1024;
    let err = |error| StoreError::Write {
        path: path.to_path_buf(),
        error,
    };
    let content = if bytes.len() <= SMALL {
        commit::Content::Bytes(bytes.to_vec(), mode)
    } else {
        commit::Content::Filled(commit::fill(path, bytes, mode).map_err(err)?)
    };
    commit::commit(commit::Job {
        path: path.to_path_buf(),
        content,
        clobber,
    })
    .map_err(err)
}

/// [`write_atomic`] for content produced by `write` as it goes (a report of ten thousand
/// orgs): streamed into the temp file, then committed like any other write.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let err = |error| StoreError::Write {
        path: path.to_path_buf(),
        error,
    };
    let content = commit::Content::Filled(commit::fill_with(path, mode, write).map_err(err)?);
    commit::commit(commit::Job {
        path: path.to_path_buf(),
        content,
        clobber: true,
    })
    .map(|_| ())
    .map_err(err)
}

/// The per-org auth file. Holds the access token: written 0600, never printed (no `Debug`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthRecord<'a> {
    pub username: &'a str,
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub access_token: &'a str,
    pub instance_url: &'a str,
    pub login_url: &'a str,
    pub audience: &'a str,
    pub client_id: &'a str,
    pub alias: Option<&'a str>,
    pub issued_at: &'a str,
}

impl AuthRecord<'_> {
    /// The file's bytes: pretty JSON and a newline.
    fn to_json(&self) -> Vec<u8> {
        let mut body = serde_json::to_vec_pretty(self).expect("an auth record always serializes");
        body.push(b'\n');
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record() -> AuthRecord<'static> {
        AuthRecord {
            username: "a@x.com",
            org_id: "00D",
            user_id: "005",
            access_token: "tok",
            instance_url: "https://x",
            login_url: "https://test.salesforce.com",
            audience: "https://test.salesforce.com",
            client_id: "c",
            alias: None,
            issued_at: "2026-11-23T00:00:00Z",
        }
    }

    #[test]
    fn out_dir_is_private_and_files_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(&tmp.path().join("out")).unwrap();
        assert_eq!(fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
        let file = dir.write_auth("a@x.com", &record()).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            leftovers, 2,
            "temp files left behind (the auth file and the lock stay)"
        );
    }

    #[test]
    fn concurrent_writes_all_land_whole_with_no_temp_files_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(&tmp.path().join("out")).unwrap();
        let names: Vec<String> = (0..64).map(|i| format!("u{i}@x.com")).collect();
        std::thread::scope(|scope| {
            for name in &names {
                let dir = &dir;
                scope.spawn(move || dir.write_auth(name, &record()).unwrap());
            }
        });
        for name in &names {
            let text = fs::read_to_string(dir.auth_file(name)).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["accessToken"], "tok");
        }
        // The auth files and the run's lock, nothing else.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), names.len() + 1);
    }

    #[test]
    fn write_new_keeps_the_file_that_was_there_first() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("key.json");
        assert!(write_new(&path, b"first", 0o600).unwrap());
        assert!(!write_new(&path, b"second", 0o600).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "temp file left"
        );
        write_atomic(&path, b"third", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "third");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_large_file_is_written_whole_too() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("report.json");
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        write_atomic(&path, &big, 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), big);
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "temp file left"
        );
    }

    #[test]
    fn a_write_into_a_missing_directory_is_an_error_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("gone").join("a.json");
        let err = write_atomic(&path, b"x", 0o600).unwrap_err().to_string();
        assert!(err.contains("gone"), "{err}");
    }

    #[test]
    fn world_writable_out_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            OutDir::open(tmp.path()),
            Err(StoreError::WorldWritable { .. })
        ));
    }

    #[test]
    fn group_writable_foreign_and_symlinked_out_dirs_are_refused_and_one_run_holds_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let group = tmp.path().join("group");
        fs::create_dir(&group).unwrap();
        fs::set_permissions(&group, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(matches!(
            OutDir::open(&group),
            Err(StoreError::WorldWritable { .. })
        ));
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = OutDir::open(&link).unwrap_err();
        assert!(matches!(err, StoreError::Symlink { .. }), "{err}");
        let first = OutDir::open(&real).unwrap();
        let err = OutDir::open(&real).unwrap_err();
        assert!(matches!(err, StoreError::Busy { .. }), "{err}");
        drop(first);
        assert!(OutDir::open(&real).is_ok(), "the lock goes with the run");
    }

    #[test]
    fn a_symlink_in_place_of_an_auth_file_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(&tmp.path().join("out")).unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.auth_file("a@x.com")).unwrap();
        dir.write_auth("a@x.com", &record()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!fs::symlink_metadata(dir.auth_file("a@x.com"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
