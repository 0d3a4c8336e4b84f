//! Stage: store. The output directory (0700) and one auth file per authorized org (0600),
//! each written atomically: a temp file in the same directory, fsync, rename, fsync of the
//! directory. Writes that arrive together are committed together by one thread (`commit`):
//! the files' fsyncs run side by side and each directory is fsynced once per batch, and a
//! write still returns only once its file is on disk. Rename replaces a symlink rather than
//! following it, and a temp file that never got renamed is removed.

use std::collections::HashMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod auth_file;
mod commit;
mod outputs;

pub use auth_file::{AuthFile, ReadError};
pub use outputs::Outputs;

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
    #[error("the output directory {path} is inside {parent}, which every user may write (mode {mode:o}, no sticky bit): another user could swap the out dir for one of their own during a run and receive its access tokens; pick an out dir under a directory only you can write, or run `chmod +t {parent}` (or `chmod o-w`)")]
    UnsafeParent {
        path: PathBuf,
        parent: PathBuf,
        mode: u32,
    },
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

/// The output directory, checked once, and held: one run writes into it at a time.
#[derive(Debug, Clone)]
pub struct OutDir {
    path: PathBuf,
    /// The advisory lock (`.fleetauth.lock`), released when the last clone is dropped.
    _lock: Option<Arc<fs::File>>,
    /// Auth files found under a name other than their username's lower case (written by an
    /// older version, or by hand), by that lower case; read once, on first use.
    strays: Arc<Mutex<Option<Strays>>>,
}

/// Auth files by the lower case of their name, for those named otherwise.
type Strays = HashMap<String, Vec<PathBuf>>;

/// The lock file every run takes in its output directory.
pub const LOCK_FILE: &str = ".fleetauth.lock";

/// How often a waiting opener tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(50);

impl OutDir {
    /// Create (0700) or open the directory and take its lock. An existing one must be a real
    /// directory of this user that no other user can write; it must be writable.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_unlocked(path)?.try_lock()
    }

    /// [`OutDir::open`], waiting up to `patience` for another run to release the directory
    /// (`fleetauth token` waits: its work is short, and parallel CI steps ask at once).
    pub async fn open_waiting(path: &Path, patience: Duration) -> Result<Self, StoreError> {
        Self::open_unlocked(path)?.lock_waiting(patience).await
    }

    /// This directory with its lock taken, waiting up to `patience` for another run to
    /// release it. The wait sleeps on the runtime's timer, never a thread.
    pub async fn lock_waiting(self, patience: Duration) -> Result<Self, StoreError> {
        let started = tokio::time::Instant::now();
        loop {
            match self.clone().try_lock() {
                Err(StoreError::Busy { .. }) if started.elapsed() < patience => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                other => return other,
            }
        }
    }

    /// Whether this handle holds the directory's lock.
    pub fn is_locked(&self) -> bool {
        self._lock.is_some()
    }

    fn try_lock(mut self) -> Result<Self, StoreError> {
        if self._lock.is_some() {
            return Ok(self);
        }
        let path = self.path.clone();
        let lock_path = path.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|error| StoreError::NotWritable {
                path: path.clone(),
                error,
            })?;
        // SAFETY: flock on a file descriptor we own; LOCK_NB never blocks.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            return Err(if error.kind() == std::io::ErrorKind::WouldBlock {
                StoreError::Busy { path }
            } else {
                StoreError::NotWritable { path, error }
            });
        }
        // A file can be created and removed here: found now, not after every grant was made.
        tempfile::Builder::new()
            .prefix(".fleetauth-probe-")
            .tempfile_in(&path)
            .map_err(|error| StoreError::NotWritable {
                path: path.clone(),
                error,
            })?;
        self._lock = Some(Arc::new(file));
        Ok(self)
    }

    /// [`OutDir::open`] without the lock (for readers such as `check`, and `token` while it
    /// only reads: auth files are replaced whole by rename, so a reader never sees a part).
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
        check_ancestors(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: None,
            strays: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// No directory above the out dir may let another user rename entries in it: one writable by
/// all without the sticky bit (`/tmp` has it) lets anyone swap the out dir between the checks
/// above and the writes.
fn check_ancestors(path: &Path) -> Result<(), StoreError> {
    let Ok(real) = fs::canonicalize(path) else {
        return Ok(());
    };
    for parent in real.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(parent) else {
            continue;
        };
        let mode = meta.mode() & 0o7777;
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Err(StoreError::UnsafeParent {
                path: path.to_path_buf(),
                parent: parent.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

impl OutDir {
    /// Wait for every write queued so far, then remove the temp files that writes cut short
    /// left here (by a run killed mid-write): they may hold tokens. Needs the lock.
    pub async fn settle(&self) -> std::io::Result<usize> {
        if self._lock.is_none() {
            return Ok(0);
        }
        commit::drain().await;
        commit::remove_leftovers(&self.path)
    }

    /// Where the auth file of `username` goes: `<username in lower case>.json`, as sf looks
    /// it up. The username was checked by `input`: no separators, no leading dot, no NUL,
    /// short enough.
    pub fn auth_file(&self, username: &str) -> PathBuf {
        self.path.join(auth_file::file_name(username))
    }

    /// The auth file of `username` that is there, in whatever spelling it was written: its own
    /// name first, else one written under another spelling.
    pub fn find_auth(&self, username: &str) -> Option<PathBuf> {
        let own = self.auth_file(username);
        if fs::symlink_metadata(&own).is_ok() {
            return Some(own);
        }
        self.with_strays(|strays| {
            strays
                .get(&username.to_lowercase())
                .and_then(|found| found.first().cloned())
        })
    }

    /// Every auth file in the directory that reads as one, with its path (`report.json`,
    /// dot files and what does not parse are left out).
    pub fn auth_files(&self) -> Vec<(PathBuf, AuthFile)> {
        let mut found: Vec<(PathBuf, AuthFile)> = fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?;
                if !is_auth_file_name(name) {
                    return None;
                }
                let (file, _) = AuthFile::read(&path).ok()?;
                Some((path, file))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    fn with_strays<T>(&self, f: impl FnOnce(&mut Strays) -> T) -> T {
        let mut guard = self.strays.lock().unwrap_or_else(|p| p.into_inner());
        let strays = guard.get_or_insert_with(|| {
            let mut strays = Strays::new();
            for entry in fs::read_dir(&self.path).into_iter().flatten().flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str().filter(|n| is_auth_file_name(n)) else {
                    continue;
                };
                let lower = name.to_lowercase();
                if lower != name {
                    let stem = lower.strip_suffix(".json").unwrap_or(&lower).to_string();
                    strays.entry(stem).or_default().push(entry.path());
                }
            }
            strays
        });
        f(strays)
    }

    /// Remove the files of `username` written under another spelling, once its own is on
    /// disk: one file per org. Its own file wins every lookup, so one that cannot be removed
    /// changes nothing that is read.
    fn remove_strays(&self, username: &str) {
        let gone = self.with_strays(|strays| strays.remove(&username.to_lowercase()));
        for path in gone.into_iter().flatten() {
            let _ = fs::remove_file(path);
        }
    }

    /// Write `file` as its username's auth file, mode 0600, atomically, replacing one written
    /// under another spelling.
    pub fn write_auth(&self, file: &AuthFile) -> Result<PathBuf, StoreError> {
        let path = self.auth_file(&file.username);
        write_atomic(&path, &file.to_json(), 0o600)?;
        self.remove_strays(&file.username);
        Ok(path)
    }

    /// [`OutDir::write_auth`] from an async task: the same durable write, awaited.
    pub async fn write_auth_async(&self, file: &AuthFile) -> Result<PathBuf, StoreError> {
        let path = self.auth_file(&file.username);
        commit::commit_async(commit::Job {
            path: path.clone(),
            content: commit::Content::Bytes(file.to_json(), 0o600),
            clobber: true,
        })
        .await
        .map_err(|error| StoreError::Write {
            path: path.clone(),
            error,
        })?;
        self.remove_strays(&file.username);
        Ok(path)
    }
}

/// Whether a file name in the out dir may be an org's auth file: `<something>@<host>.json`, not
/// a dot file (sf's rule for its own auth files, which fleetauth's follow).
pub fn is_auth_file_name(name: &str) -> bool {
    !name.starts_with('.') && name.contains('@') && name.ends_with(".json")
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record(username: &str) -> AuthFile {
        AuthFile {
            username: username.into(),
            org_id: "00D".into(),
            user_id: "005".into(),
            access_token: crate::secret::Secret::new("tok".into()),
            instance_url: "https://x".into(),
            login_url: "https://test.salesforce.com".into(),
            audience: "https://test.salesforce.com".into(),
            client_id: "c".into(),
            alias: None,
            issued_at: "2026-11-23T00:00:00Z".into(),
        }
    }

    #[test]
    fn out_dir_is_private_and_files_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(&tmp.path().join("out")).unwrap();
        assert_eq!(fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
        let file = dir.write_auth(&record("a@x.com")).unwrap();
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
                scope.spawn(move || dir.write_auth(&record(name)).unwrap());
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
        dir.write_auth(&record("a@x.com")).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!fs::symlink_metadata(dir.auth_file("a@x.com"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn one_auth_file_per_org_whatever_the_spelling_and_a_stray_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out");
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        // Written by an older version under the list's spelling.
        let stray = path.join("Test.User@Example.com.json");
        fs::write(&stray, record("Test.User@Example.com").to_json()).unwrap();
        let dir = OutDir::open(&path).unwrap();
        assert_eq!(dir.find_auth("TEST.user@example.COM"), Some(stray.clone()));
        assert_eq!(dir.auth_files().len(), 1);
        let own = dir.write_auth(&record("test.user@EXAMPLE.com")).unwrap();
        assert_eq!(own, path.join("test.user@example.com.json"));
        assert!(!stray.exists(), "the other spelling's file was replaced");
        assert_eq!(dir.find_auth("Test.User@Example.com"), Some(own));
        assert_eq!(dir.auth_files().len(), 1);
    }

    #[tokio::test]
    async fn a_waiting_open_takes_the_lock_once_it_is_released() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out");
        let held = OutDir::open(&path).unwrap();
        let reader = OutDir::open_unlocked(&path).unwrap();
        assert!(!reader.is_locked());
        let err = OutDir::open_waiting(&path, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Busy { .. }), "{err}");
        let waiting = tokio::spawn(reader.lock_waiting(Duration::from_secs(60)));
        drop(held);
        let locked = waiting.await.unwrap().unwrap();
        assert!(locked.is_locked());
    }
}
