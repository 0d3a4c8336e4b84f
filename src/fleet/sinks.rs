//! Where a grant is stored: one [`Sink`] per place (the out dir's auth files, the Salesforce
//! CLI's state). A sink owns its whole life in a run: what it checks before anything is sent,
//! whether it already holds a fresh grant of an org (resume), the write, and what it has to
//! say at the end. The fleet hands every grant to each sink in turn and never writes a file
//! itself; an outcome lists where it was stored. A new place is one more implementation here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use url::Url;

use crate::input::Target;
use crate::sfstate::handoff::Handoff;
use crate::store::{AuthFile, OutDir};
use crate::token::{Grant, GrantError};
use crate::urls;

/// Which place a sink stores into (for the outcome's file fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    OutDir,
    SfState,
}

impl SinkKind {
    pub const ALL: [SinkKind; 2] = [SinkKind::OutDir, SinkKind::SfState];
}

/// The run's limit for a sink's own requests to the org (sf's probes): the same slots as the
/// token requests (`--concurrency`). Not `--rate`, which is the login servers' limit: a probe
/// goes to the org's own instance, under its API limits.
#[derive(Clone, Copy)]
pub struct Admission<'a>(pub(super) &'a super::Fleet);

impl Admission<'_> {
    /// Wait for a slot; hold the permit for the request. `None`: the run is stopping, send
    /// nothing more.
    pub async fn request(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.slot().await
    }
}

/// One grant, as the sinks see it.
pub struct Granted<'a> {
    /// For the sink's own requests to the org, if it makes any.
    pub admission: Admission<'a>,
    pub target: &'a Target,
    /// The host the assertion was POSTed to.
    pub token_host: &'a Url,
    pub grant: &'a Grant,
    pub issued_at: time::OffsetDateTime,
}

/// A grant of an org that a sink already holds, young enough to skip the org (resume).
#[derive(Debug, Default)]
pub struct Fresh {
    /// The file that holds it, and what the report says of it.
    pub file: Option<(PathBuf, String)>,
}

/// What a sink says when the run is over: warnings, and errors that fail the run (exit 1).
#[derive(Debug, Default)]
pub struct Closing {
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

/// A sink's check before anything is sent failed: nothing was sent (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PreflightError(pub String);

/// A place where grants are stored.
pub trait Sink: Send + Sync {
    fn kind(&self) -> SinkKind;

    /// Before anything is sent: what this place must check of the orgs to be granted. Its
    /// warnings join the run's.
    fn preflight(
        &self,
        _grant: &[Target],
        _warnings: &mut Vec<String>,
    ) -> Result<(), PreflightError> {
        Ok(())
    }

    /// Whether this place holds a grant of `target` younger than `limit`, made with this
    /// run's identity; `None`: it must be granted.
    fn fresh(&self, target: &Target, limit: Duration) -> Option<Fresh>;

    /// Store one grant; the path of what was written, or why it could not be.
    fn store<'a>(&'a self, granted: &'a Granted<'a>) -> BoxFuture<'a, Result<PathBuf, GrantError>>;

    /// After the last grant: wait for what is still being written, and say what could not be.
    fn finish(&self) -> BoxFuture<'_, Closing> {
        Box::pin(async { Closing::default() })
    }
}

/// Where one org's grant was stored: a path per place, by [`SinkKind`]. Inline, not a heap
/// list: a fleet keeps one per org.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored([Option<Box<Path>>; SinkKind::ALL.len()]);

impl Stored {
    pub fn set(&mut self, kind: SinkKind, path: PathBuf) {
        if let Some(slot) = self.0.get_mut(kind as usize) {
            *slot = Some(path.into_boxed_path());
        }
    }

    pub fn get(&self, kind: SinkKind) -> Option<&Path> {
        self.0.get(kind as usize)?.as_deref()
    }

    pub fn take(&mut self, kind: SinkKind) -> Option<Box<Path>> {
        self.0.get_mut(kind as usize)?.take()
    }
}

/// Every place a run stores its grants, in order.
#[derive(Default)]
pub struct Sinks(Vec<Box<dyn Sink>>);

impl Sinks {
    pub fn with(mut self, sink: impl Sink + 'static) -> Self {
        self.0.push(Box::new(sink));
        self
    }

    /// A run's sinks: the out dir's auth files, then sf's state when asked. `host` is the
    /// run's token host (`--instance-url`).
    pub fn for_run(
        dir: OutDir,
        signer: &crate::assertion::Signer,
        host: &Url,
        sf: Option<Handoff>,
    ) -> Self {
        let sinks = Self::default().with(OutDirSink {
            dir,
            client_id: signer.client_id().to_string(),
            audience: signer.audience().to_string(),
            host: urls::display(host),
        });
        match sf {
            Some(handoff) => sinks.with(handoff),
            None => sinks,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Sink> {
        self.0.iter().map(|s| s.as_ref())
    }

    /// Every sink's check before anything is sent.
    pub fn preflight(
        &self,
        grant: &[Target],
        warnings: &mut Vec<String>,
    ) -> Result<(), PreflightError> {
        self.iter().try_for_each(|s| s.preflight(grant, warnings))
    }

    /// `target` may be skipped when every sink holds a fresh grant of it (`None` for `limit`:
    /// `--force`, nothing is fresh).
    pub fn fresh(&self, target: &Target, limit: Option<Duration>) -> Option<(PathBuf, String)> {
        let limit = limit?;
        let mut file = None;
        for sink in self.iter() {
            let fresh = sink.fresh(target, limit)?;
            file = file.or(fresh.file);
        }
        file
    }

    /// Every sink's closing words, in order.
    pub async fn finish(&self) -> Closing {
        let mut closing = Closing::default();
        for sink in self.iter() {
            let c = sink.finish().await;
            closing.warnings.extend(c.warnings);
            closing.errors.extend(c.errors);
        }
        closing
    }
}

/// The out dir's per-org auth files (`<username>.json`, 0600, atomic).
pub struct OutDirSink {
    pub dir: OutDir,
    /// The run's identity, recorded so a later run can tell whether the file is its own.
    pub client_id: String,
    pub audience: String,
    /// The run's token host (the fallback for rows with their own), as auth files record it.
    pub host: String,
}

impl Sink for OutDirSink {
    fn kind(&self) -> SinkKind {
        SinkKind::OutDir
    }

    /// An auth file of the org, in whatever spelling of the username it was written, younger
    /// than `limit` and made with this run's consumer key, audience and one of its token hosts.
    fn fresh(&self, target: &Target, limit: Duration) -> Option<Fresh> {
        let path = self.dir.find_auth(&target.username)?;
        let (file, age) = AuthFile::read(&path).ok()?;
        if age >= limit {
            return None;
        }
        let own_host = || {
            target
                .instance_url
                .as_deref()
                .and_then(|u| urls::token_host(u).ok())
                .is_some_and(|u| urls::display(&u) == file.login_url)
        };
        let same_identity = file.client_id == self.client_id
            && file.audience == self.audience
            && (file.login_url == self.host || own_host())
            && !file.access_token.expose().is_empty()
            && file.is_of(&target.username);
        if !same_identity {
            return None;
        }
        let age = Duration::from_secs(age.as_secs());
        let note = format!(
            "authorized {} ago by an earlier run (younger than --fresh-for {}); --force grants it again",
            humantime::format_duration(age),
            humantime::format_duration(limit)
        );
        Some(Fresh {
            file: Some((path, note)),
        })
    }

    fn store<'a>(&'a self, g: &'a Granted<'a>) -> BoxFuture<'a, Result<PathBuf, GrantError>> {
        Box::pin(async move {
            let issued_at = crate::report::timestamp::format(g.issued_at);
            let file = AuthFile {
                username: g.target.username.clone(),
                org_id: g.grant.org_id.clone(),
                user_id: g.grant.user_id.clone(),
                access_token: g.grant.access_token.clone(),
                instance_url: g.grant.instance_url.clone(),
                login_url: urls::display(g.token_host),
                audience: self.audience.clone(),
                client_id: self.client_id.clone(),
                alias: g.target.alias.clone(),
                issued_at,
            };
            // Awaited on the committer directly: no blocking-pool thread per org.
            let written = self
                .dir
                .write_auth_async(&file)
                .await
                .map_err(|e| e.to_string());
            written.map_err(|description| {
                GrantError::permanent(
                    "store_failed",
                    description,
                    "the grant worked but its auth file could not be written: check disk space and permissions of --out-dir, then re-run",
                )
            })
        })
    }
}

impl Sink for Handoff {
    fn kind(&self) -> SinkKind {
        SinkKind::SfState
    }

    /// Aliases the orgs would get that already name another username in sf's state are not
    /// re-pointed (unless `--sf-replace-aliases`): said before anything is sent.
    fn preflight(
        &self,
        grant: &[Target],
        warnings: &mut Vec<String>,
    ) -> Result<(), PreflightError> {
        if self.replace_aliases {
            return Ok(());
        }
        let existing = self
            .aliases_before()
            .map_err(|e| PreflightError(e.to_string()))?;
        for target in grant {
            for alias in self.aliases_for(target) {
                if let Some(other) = existing
                    .get(&alias)
                    .and_then(serde_json::Value::as_str)
                    .filter(|u| !u.eq_ignore_ascii_case(&target.username))
                {
                    warnings.push(format!(
                        "sf alias {alias} already names {other}; it is left as it is, so {} gets no alias {alias} (--sf-replace-aliases re-points it)",
                        target.username
                    ));
                }
            }
        }
        Ok(())
    }

    /// sf's state holds the org as this run would leave it: its auth file reads, with a token
    /// and this run's consumer key, and each alias the run gives it names it (or, unless
    /// `--sf-replace-aliases`, another org, which the run would leave as it is). The out dir's
    /// sink tells the grant's age.
    fn fresh(&self, target: &Target, _limit: Duration) -> Option<Fresh> {
        let path = self.state.auth_path(&target.username);
        let bytes = crate::files::read_found(&path, crate::files::KEY_CAP)?;
        let auth: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let text = |field: &str| auth.get(field).and_then(serde_json::Value::as_str);
        if text("clientId") != Some(self.client_id.as_str())
            || text("accessToken").is_none_or(str::is_empty)
        {
            return None;
        }
        let wanted = self.aliases_for(target);
        if !wanted.is_empty() {
            // alias.json unreadable: nothing in sf is as the run would leave it.
            let aliases = self.aliases_before().ok()?;
            let holds = |alias: &String| match aliases.get(alias).and_then(|v| v.as_str()) {
                Some(user) => user.eq_ignore_ascii_case(&target.username) || !self.replace_aliases,
                None => false,
            };
            if !wanted.iter().all(holds) {
                return None;
            }
        }
        Some(Fresh::default())
    }

    /// The aliases still being written land; those kept or refused are said.
    fn finish(&self) -> BoxFuture<'_, Closing> {
        Box::pin(async move {
            let aliases = self.writer_shared().finish().await;
            Closing {
                warnings: aliases
                    .kept
                    .iter()
                    .map(|a| {
                        format!(
                            "sf alias {a} was left as it is (--sf-replace-aliases re-points it)"
                        )
                    })
                    .collect(),
                errors: aliases.failure_warning().into_iter().collect(),
            }
        })
    }

    fn store<'a>(&'a self, g: &'a Granted<'a>) -> BoxFuture<'a, Result<PathBuf, GrantError>> {
        Box::pin(async move {
            self.record(g.target, g.grant, g.token_host, g.admission)
                .await.map_err(|e| {
                GrantError::permanent(
                    "sf_state_failed",
                    e.to_string(),
                    "the grant worked but the Salesforce CLI's state could not be written: check ~/.sfdx (or --sf-home), then re-run",
                )
            })
        })
    }
}
