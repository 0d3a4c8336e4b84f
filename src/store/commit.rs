//! Group commit for the store's atomic writes. A writer fills its temp file and hands it here;
//! one committer thread takes every temp file waiting at that moment as a batch and, for the
//! batch: starts the data's writeback for all files at once (`sync_file_range`, Linux), fsyncs
//! each file (the first fsync commits the journal for the whole batch, so the others find their
//! inode already committed), renames each into place, then fsyncs each directory once. Each
//! writer is answered when its batch is done, so a writer that returns `Ok` has its file on disk.
//! While one batch commits, the next one gathers: the busier the run, the larger the batches,
//! with no timer to tune.
//!
//! Crash guarantee: a final path holds its old content (or nothing) or the whole new content,
//! never a part, because the rename comes after the data is durable; a file whose write returned
//! `Ok` survives a crash, because its directory was fsynced after the rename. A crash can leave
//! a `.fleetauth-*.tmp` (mode 0600) behind; nothing reads those.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;

use tempfile::NamedTempFile;

/// A filled temp file to be renamed to `path`; `clobber` false keeps an existing `path`.
pub(super) struct Job {
    pub tmp: NamedTempFile,
    pub path: PathBuf,
    pub clobber: bool,
}

struct Queued {
    job: Job,
    /// `Ok(false)`: `clobber` was false and `path` existed.
    reply: mpsc::SyncSender<io::Result<bool>>,
}

/// Commit `job` with whatever else is waiting; returns when it is renamed and on disk.
pub(super) fn commit(job: Job) -> io::Result<bool> {
    let (reply, answer) = mpsc::sync_channel(1);
    committer()
        .send(Queued { job, reply })
        .map_err(|_| io::Error::other("the file committer thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the file committer thread is gone"))?
}

fn committer() -> &'static mpsc::Sender<Queued> {
    static QUEUE: OnceLock<mpsc::Sender<Queued>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Queued>();
        std::thread::Builder::new()
            .name("fleetauth-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    commit_batch(batch);
                }
            })
            .expect("the file committer thread starts");
        tx
    })
}

fn commit_batch(batch: Vec<Queued>) {
    for q in &batch {
        start_writeback(q.job.tmp.as_file());
    }
    let mut renamed: Vec<(mpsc::SyncSender<io::Result<bool>>, PathBuf, bool)> = Vec::new();
    for Queued { job, reply } in batch {
        match persist(job) {
            Ok((path, replaced)) => renamed.push((reply, path, replaced)),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
    let dirs: BTreeSet<&Path> = renamed.iter().map(|(_, path, _)| parent(path)).collect();
    let synced: Vec<(&Path, io::Result<()>)> = dirs
        .into_iter()
        .map(|dir| (dir, File::open(dir).and_then(|d| d.sync_all())))
        .collect();
    for (reply, path, replaced) in &renamed {
        let dir = parent(path);
        let outcome = match synced.iter().find(|(d, _)| *d == dir) {
            Some((_, Err(e))) => Err(io::Error::new(
                e.kind(),
                format!("fsync of {}: {e}", dir.display()),
            )),
            _ => Ok(*replaced),
        };
        let _ = reply.send(outcome);
    }
}

/// fsync the temp file, then rename it into place. `Ok(path, false)`: kept an existing file.
fn persist(job: Job) -> io::Result<(PathBuf, bool)> {
    job.tmp.as_file().sync_all()?;
    if job.clobber {
        job.tmp.persist(&job.path).map_err(|e| e.error)?;
        return Ok((job.path, true));
    }
    match job.tmp.persist_noclobber(&job.path) {
        Ok(_) => Ok((job.path, true)),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok((job.path, false)),
        Err(e) => Err(e.error),
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Start writing the file's data out without waiting, so the fsyncs that follow find it in
/// flight and the batch's block allocations land in one journal transaction.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open. A failure
    // only means the fsync that follows does all the work.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File) {}
