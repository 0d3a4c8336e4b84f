//! The one writer of sf's state during a run. Org tasks hand it each auth file (already
//! encrypted) and the org's aliases; it runs on two threads of its own, never on the async
//! runtime's blocking pool (where reqwest resolves host names), so waiting for sf's `.lock`
//! directories stalls nothing but sf's files:
//! - the auth thread takes every auth file waiting at that moment as a batch, locks each as sf
//!   does, and commits them together (their fsyncs side by side), then answers each org;
//! - the alias thread takes every alias waiting as a batch and merges it into `alias.json`
//!   with one rewrite, under sf's lock.
//!
//! An org is answered once its auth file is on disk: an alias that cannot be written (a live
//! `alias.json.lock`) does not fail it. Those are counted and said at the end ([`SfWriter::finish`]).

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::lock::FileLock;
use super::{io_err, SfState, SfStateError};

/// One auth file to write: holds an encrypted token, so it has no `Debug`.
struct AuthJob {
    path: PathBuf,
    body: Vec<u8>,
    /// (alias, username) pairs to add once the file is written.
    aliases: Vec<(String, String)>,
    reply: tokio::sync::oneshot::Sender<Result<PathBuf, SfStateError>>,
}

enum AliasJob {
    Add(Vec<(String, String)>),
    /// Every alias sent before is written (or failed): report.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// What became of the aliases of a run.
#[derive(Debug, Default, Clone)]
pub struct AliasResults {
    /// Aliases left as they were because they name another username (`alias (names other)`).
    pub kept: Vec<String>,
    /// Aliases that could not be written: (alias, username).
    pub failed: Vec<(String, String)>,
    /// Why they could not (the first error).
    pub why: Option<String>,
}

impl AliasResults {
    /// The error for aliases that could not be written to sf's alias.json: their orgs are
    /// authorized and in sf's state, only the alias is missing; the command that sets them.
    pub(crate) fn failure_warning(&self) -> Option<String> {
        const SHOWN: usize = 10;
        if self.failed.is_empty() {
            return None;
        }
        // In a stable order whatever order the writes failed in: `P2` before `P10`.
        let mut failed: Vec<&(String, String)> = self.failed.iter().collect();
        failed.sort_by_cached_key(|(alias, _)| {
            let digits = alias.len() - alias.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            let (stem, number) = alias.split_at(alias.len() - digits);
            (stem.to_string(), number.len(), number.to_string())
        });
        let set: Vec<String> = failed
            .into_iter()
            .take(SHOWN)
            .map(|(alias, username)| format!("{alias}={username}"))
            .collect();
        Some(format!(
            "{} sf alias(es) could not be written: {}. Their orgs are authorized and their sf auth files are written; only the aliases are missing. Set them with `sf alias set {}`{}",
            self.failed.len(),
            self.why.as_deref().unwrap_or("alias.json could not be written"),
            set.join(" "),
            if self.failed.len() > SHOWN {
                format!(" (and {} more)", self.failed.len() - SHOWN)
            } else {
                String::new()
            }
        ))
    }
}

struct Threads {
    auth: mpsc::Sender<AuthJob>,
    aliases: mpsc::Sender<AliasJob>,
}

/// The writer of sf's state, started on first use.
#[derive(Default)]
pub struct SfWriter {
    threads: OnceLock<Option<Threads>>,
    results: Arc<Mutex<AliasResults>>,
}

impl std::fmt::Debug for SfWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfWriter").finish_non_exhaustive()
    }
}

fn gone() -> SfStateError {
    SfStateError::Io("the writer of the Salesforce CLI's state stopped".into())
}

impl SfWriter {
    fn threads(&self, state: &Arc<SfState>, replace: bool) -> Option<&Threads> {
        self.threads
            .get_or_init(|| start(Arc::clone(state), replace, Arc::clone(&self.results)))
            .as_ref()
    }

    /// Write `body` as `path` under sf's lock; `aliases` are added to alias.json afterwards.
    /// Returns once the file is on disk.
    pub(super) async fn write(
        &self,
        state: &Arc<SfState>,
        replace: bool,
        path: PathBuf,
        body: Vec<u8>,
        aliases: Vec<(String, String)>,
    ) -> Result<PathBuf, SfStateError> {
        let threads = self.threads(state, replace).ok_or_else(gone)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        threads
            .auth
            .send(AuthJob {
                path,
                body,
                aliases,
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Wait until every alias handed over is written or failed, and say what became of them.
    pub async fn finish(&self) -> AliasResults {
        if let Some(Some(threads)) = self.threads.get() {
            let (reply, answer) = tokio::sync::oneshot::channel();
            if threads.aliases.send(AliasJob::Flush(reply)).is_ok() {
                let _ = answer.await;
            }
        }
        self.results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Start both threads; `None` if the system cannot start a thread (every write then fails).
fn start(state: Arc<SfState>, replace: bool, results: Arc<Mutex<AliasResults>>) -> Option<Threads> {
    let (auth_tx, auth_rx) = mpsc::channel::<AuthJob>();
    let (alias_tx, alias_rx) = mpsc::channel::<AliasJob>();
    let forward = alias_tx.clone();
    std::thread::Builder::new()
        .name("fleetauth-sf-auth".into())
        .spawn(move || {
            while let Ok(first) = auth_rx.recv() {
                let mut batch = vec![first];
                batch.extend(auth_rx.try_iter());
                write_auth_batch(batch, &forward);
            }
        })
        .ok()?;
    std::thread::Builder::new()
        .name("fleetauth-sf-alias".into())
        .spawn(move || alias_thread(&state, replace, &alias_rx, &results))
        .ok()?;
    Some(Threads {
        auth: auth_tx,
        aliases: alias_tx,
    })
}

fn write_auth_batch(batch: Vec<AuthJob>, aliases: &mpsc::Sender<AliasJob>) {
    let mut locked = Vec::with_capacity(batch.len());
    for job in batch {
        match FileLock::acquire(&job.path) {
            Ok(lock) => locked.push((job, lock)),
            Err(e) => {
                let _ = job.reply.send(Err(io_err(&job.path, e)));
            }
        }
    }
    let files = locked
        .iter()
        .map(|(job, _)| (job.path.clone(), job.body.clone()))
        .collect();
    let written = crate::store::write_atomic_all(files, 0o600);
    for ((job, lock), result) in locked.into_iter().zip(written) {
        drop(lock);
        let AuthJob {
            path,
            aliases: pairs,
            reply,
            ..
        } = job;
        match result {
            Ok(()) => {
                if !pairs.is_empty() {
                    let _ = aliases.send(AliasJob::Add(pairs));
                }
                let _ = reply.send(Ok(path));
            }
            Err(e) => {
                let _ = reply.send(Err(io_err(&path, e)));
            }
        }
    }
}

fn alias_thread(
    state: &SfState,
    replace: bool,
    jobs: &mpsc::Receiver<AliasJob>,
    results: &Mutex<AliasResults>,
) {
    // Once alias.json could not be written (its lock held past sf's patience), later aliases
    // are not tried: each try would hold the end of the run for as long again.
    let mut broken: Option<String> = None;
    while let Ok(first) = jobs.recv() {
        let mut pairs = Vec::new();
        let mut flushes = Vec::new();
        for job in std::iter::once(first).chain(jobs.try_iter()) {
            match job {
                AliasJob::Add(more) => pairs.extend(more),
                AliasJob::Flush(reply) => flushes.push(reply),
            }
        }
        if !pairs.is_empty() {
            let written = match &broken {
                Some(why) => Err(why.clone()),
                None => state
                    .add_aliases(&pairs, replace)
                    .map_err(|e| e.to_string()),
            };
            let mut results = results.lock().unwrap_or_else(PoisonError::into_inner);
            match written {
                Ok(kept) => results.kept.extend(kept),
                Err(why) => {
                    results.why.get_or_insert_with(|| why.clone());
                    results.failed.extend(pairs);
                    broken = Some(why);
                }
            }
        }
        for reply in flushes {
            let _ = reply.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AliasResults;

    #[test]
    fn the_failed_aliases_are_listed_in_their_natural_order() {
        let results = AliasResults {
            failed: ["P10", "P2", "P1", "a"]
                .map(|a| (a.to_string(), format!("{a}@x.com")))
                .to_vec(),
            ..AliasResults::default()
        };
        let warning = results.failure_warning().unwrap();
        assert!(
            warning.contains("sf alias set P1=P1@x.com P2=P2@x.com P10=P10@x.com a=a@x.com"),
            "{warning}"
        );
    }
}
