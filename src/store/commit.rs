//! Group commit for the store's atomic writes. Writers hand their bytes to one committer thread,
//! which takes every write waiting at that moment as a batch and, for the batch: fills a temp
//! file beside each target, starts the data's writeback for all of them (`sync_file_range`,
//! Linux), fsyncs them several at a time, renames each into place, then fsyncs each directory
//! once. Each writer is answered when its batch is done, so a write that returns `Ok` is on
//! disk. While one batch commits, the next one gathers: the busier the run, the larger the
//! batches, with no timer to tune.
//!
//! Why one thread fills the files: writers creating files in one directory at once contend for
//! its lock and for the file system's inode allocator, and burn CPU spinning there (seen with
//! `perf` on ext4). Why the fsyncs stay per file: on a file system without a journal (this
//! project's CI disk) nothing orders a rename after the data, so only a file's own fsync makes
//! its content durable; run concurrently, their cache flushes are merged by the block layer.
//!
//! Crash guarantee: a target path holds its old content (or nothing) or the whole new content,
//! never a part, because the rename comes after the file's fsync; a write that returned `Ok`
//! survives a crash, because its directory was fsynced after the rename. A crash can leave a
//! `.fleetauth-*.tmp` (mode 0600) behind; nothing reads those.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;

use tempfile::NamedTempFile;

/// Content for `path`; `clobber` false keeps an existing `path`.
pub(super) struct Job {
    pub path: PathBuf,
    pub content: Content,
    pub clobber: bool,
}

pub(super) enum Content {
    /// Small content, written by the committer into a temp file with this mode.
    Bytes(Vec<u8>, u32),
    /// A temp file beside `path` the writer filled itself (large content: no copy is made).
    Filled(NamedTempFile),
}

struct Queued {
    /// `None`: a barrier, answered once every write queued before it is done.
    job: Option<Job>,
    /// `Ok(false)`: `clobber` was false and `path` existed.
    reply: Reply,
}

/// Where a writer waits for its answer: a blocked thread, or an async task (no thread).
enum Reply {
    Thread(mpsc::SyncSender<io::Result<bool>>),
    Task(tokio::sync::oneshot::Sender<io::Result<bool>>),
}

impl Reply {
    fn send(self, result: io::Result<bool>) {
        match self {
            Reply::Thread(tx) => {
                let _ = tx.send(result);
            }
            Reply::Task(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("the file committer thread is gone")
}

/// Commit `job` with whatever else is waiting; returns when it is renamed and on disk.
pub(super) fn commit(job: Job) -> io::Result<bool> {
    let (reply, answer) = mpsc::sync_channel(1);
    committer()
        .send(Queued {
            job: Some(job),
            reply: Reply::Thread(reply),
        })
        .map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// [`commit`] for several jobs at once: all are queued before the first answer is awaited, so
/// they share a batch (their fsyncs side by side, one fsync of each directory).
pub(super) fn commit_all(jobs: Vec<Job>) -> Vec<io::Result<bool>> {
    let answers: Vec<io::Result<mpsc::Receiver<io::Result<bool>>>> = jobs
        .into_iter()
        .map(|job| {
            let (reply, answer) = mpsc::sync_channel(1);
            committer()
                .send(Queued {
                    job: Some(job),
                    reply: Reply::Thread(reply),
                })
                .map(|()| answer)
                .map_err(|_| gone())
        })
        .collect();
    answers
        .into_iter()
        .map(|answer| answer.and_then(|a| a.recv().map_err(|_| gone())?))
        .collect()
}

/// [`commit`] for an async task: it waits without holding a thread (no hand-off to the
/// blocking pool and back for every auth file).
pub(super) async fn commit_async(job: Job) -> io::Result<bool> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    committer()
        .send(Queued {
            job: Some(job),
            reply: Reply::Task(reply),
        })
        .map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

/// Wait until every write queued so far is done (renamed into place or failed, its temp file
/// gone): before a run that was stopped ends, so no `.fleetauth-*.tmp` is left mid-write.
pub(super) async fn drain() {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let queued = committer().send(Queued {
        job: None,
        reply: Reply::Task(reply),
    });
    if queued.is_ok() {
        let _ = answer.await;
    }
}

/// Remove the temp files a write cut short left in `dir` (a run killed mid-write: they hold
/// tokens). Only for a directory this process holds the lock of, after [`drain`].
pub(super) fn remove_leftovers(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".fleetauth-")
            && name.ends_with(".tmp")
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[expect(
    clippy::expect_used,
    reason = "without its committer thread no file can be written: failing to start it is fatal at once"
)]
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
    let mut filled = Vec::with_capacity(batch.len());
    let mut barriers = Vec::new();
    for Queued { job, reply } in batch {
        let Some(job) = job else {
            barriers.push(reply);
            continue;
        };
        let Job {
            path,
            content,
            clobber,
        } = job;
        let tmp = match content {
            Content::Bytes(bytes, mode) => fill(&path, &bytes, mode),
            Content::Filled(tmp) => Ok(tmp),
        };
        match tmp {
            Ok(tmp) => {
                start_writeback(tmp.as_file());
                filled.push(((path, clobber), reply, tmp));
            }
            Err(e) => {
                reply.send(Err(e));
            }
        }
    }
    let synced = sync_all(filled.iter().map(|(_, _, tmp)| tmp.as_file()).collect());
    let mut renamed = Vec::with_capacity(filled.len());
    for (((path, clobber), reply, tmp), synced) in filled.into_iter().zip(synced) {
        match synced.and_then(|()| persist(tmp, &path, clobber)) {
            Ok(replaced) => renamed.push((path, reply, replaced)),
            Err(e) => {
                reply.send(Err(e));
            }
        }
    }
    let dirs: BTreeSet<&Path> = renamed.iter().map(|(path, _, _)| parent(path)).collect();
    let dirs: Vec<(&Path, io::Result<()>)> = dirs
        .into_iter()
        .map(|dir| (dir, File::open(dir).and_then(|d| d.sync_all())))
        .collect();
    let outcomes: Vec<io::Result<bool>> = renamed
        .iter()
        .map(|(path, _, replaced)| {
            let dir = parent(path);
            match dirs.iter().find(|(d, _)| *d == dir) {
                Some((_, Err(e))) => Err(io::Error::new(
                    e.kind(),
                    format!("fsync of {}: {e}", dir.display()),
                )),
                _ => Ok(*replaced),
            }
        })
        .collect();
    drop(dirs);
    for ((_, reply, _), outcome) in renamed.into_iter().zip(outcomes) {
        reply.send(outcome);
    }
    for reply in barriers {
        reply.send(Ok(true));
    }
}

/// A temp file beside `path` holding `bytes` with `mode`. tempfile creates it with O_EXCL and
/// mode 0600, and deletes it if it is dropped before the rename.
pub(super) fn fill(path: &Path, bytes: &[u8], mode: u32) -> io::Result<NamedTempFile> {
    fill_with(path, mode, |w| w.write_all(bytes))
}

/// [`fill`], the content written by `write` (through a buffer): a large report is streamed
/// into its temp file, never held whole in memory.
pub(super) fn fill_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".fleetauth-")
        .suffix(".tmp")
        .tempfile_in(parent(path))?;
    {
        let mut buffered = io::BufWriter::with_capacity(64 * 1024, tmp.as_file_mut());
        write(&mut buffered)?;
        buffered.flush()?;
    }
    if mode != 0o600 {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(tmp)
}

/// fsync every file, up to eight at a time, in order. The threads write into a slice made
/// here rather than allocate, so they add no malloc arena to the process's memory.
fn sync_all(files: Vec<&File>) -> Vec<io::Result<()>> {
    const THREADS: usize = 8;
    if files.len() <= 1 {
        return files.iter().map(|f| f.sync_all()).collect();
    }
    let mut results: Vec<io::Result<()>> = files.iter().map(|_| Ok(())).collect();
    let chunk = files.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        for (part, out) in files.chunks(chunk).zip(results.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (file, result) in part.iter().zip(out) {
                    *result = file.sync_all();
                }
            });
        }
    });
    results
}

/// Rename the temp file into place; `Ok(false)`: `clobber` was false and `path` existed.
fn persist(tmp: NamedTempFile, path: &Path, clobber: bool) -> io::Result<bool> {
    if clobber {
        tmp.persist(path).map_err(|e| e.error)?;
        return Ok(true);
    }
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
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
/// flight.
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
