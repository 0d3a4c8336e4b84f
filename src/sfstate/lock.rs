//! sf's file-locking convention (proper-lockfile): a writer creates the directory
//! `<file>.lock` with mkdir (atomic), and a lock older than 10 s is stale and may be taken
//! over. Taking the same lock lets fleetauth write beside a running `sf`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const STALE: Duration = Duration::from_secs(10);
/// How long to keep trying before giving up on a busy lock.
const PATIENCE: Duration = Duration::from_secs(30);

/// A held `<file>.lock`; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    dir: PathBuf,
}

impl FileLock {
    pub fn acquire(file: &Path) -> io::Result<Self> {
        let mut name = file.as_os_str().to_owned();
        name.push(".lock");
        let dir = PathBuf::from(name);
        let started = SystemTime::now();
        let mut wait = Duration::from_millis(5);
        loop {
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(Self { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&dir)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE);
                    if stale {
                        // Take over a lock its holder abandoned.
                        let _ = fs::remove_dir(&dir);
                        continue;
                    }
                    if started.elapsed().unwrap_or_default() > PATIENCE {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            format!("{} has been locked by another process for over 30 s; if no sf command is running, remove it", dir.display()),
                        ));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_excludes_and_releases() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("alias.json");
        let held = FileLock::acquire(&file).unwrap();
        let lock_dir = tmp.path().join("alias.json.lock");
        assert!(lock_dir.is_dir());
        assert_eq!(
            fs::create_dir(&lock_dir).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists,
            "what any other writer meets while it is held"
        );
        // The waiter records whether the lock had been released when it got it: no clock.
        let released = Arc::new(AtomicBool::new(false));
        let trying = Arc::new(AtomicBool::new(false));
        let waiter = std::thread::spawn({
            let (file, released, trying) =
                (file.clone(), Arc::clone(&released), Arc::clone(&trying));
            move || {
                trying.store(true, Ordering::SeqCst);
                FileLock::acquire(&file).map(|lock| (released.load(Ordering::SeqCst), lock))
            }
        });
        while !trying.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        released.store(true, Ordering::SeqCst);
        drop(held);
        let (after_release, lock) = waiter.join().unwrap().unwrap();
        assert!(after_release, "the second writer waited for the first");
        drop(lock);
        assert!(!lock_dir.exists());
    }
}
