//! Where a grant is stored: one [`Sink`] per place (the out dir's auth files, the Salesforce
//! CLI's state). The fleet hands every grant to each sink in turn and never writes a file
//! itself; a new place to store grants is one more implementation here.

use std::path::PathBuf;

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

/// One grant, as the sinks see it.
pub struct Granted<'a> {
    pub target: &'a Target,
    /// The host the assertion was POSTed to.
    pub token_host: &'a Url,
    pub grant: &'a Grant,
    pub issued_at: time::OffsetDateTime,
}

/// A place where grants are stored.
pub trait Sink: Send + Sync {
    fn kind(&self) -> SinkKind;

    /// Store one grant; the path of what was written, or why it could not be.
    fn store<'a>(&'a self, granted: &'a Granted<'a>) -> BoxFuture<'a, Result<PathBuf, GrantError>>;
}

/// Every place a run stores its grants, in order.
#[derive(Default)]
pub struct Sinks(Vec<Box<dyn Sink>>);

impl Sinks {
    pub fn with(mut self, sink: impl Sink + 'static) -> Self {
        self.0.push(Box::new(sink));
        self
    }

    /// A run's sinks: the out dir's auth files, then sf's state when asked.
    pub fn for_run(dir: OutDir, signer: &crate::assertion::Signer, sf: Option<Handoff>) -> Self {
        let sinks = Self::default().with(OutDirSink {
            dir,
            client_id: signer.client_id().to_string(),
            audience: signer.audience().to_string(),
        });
        match sf {
            Some(handoff) => sinks.with(handoff),
            None => sinks,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Sink> {
        self.0.iter().map(|s| s.as_ref())
    }
}

/// The out dir's per-org auth files (`<username>.json`, 0600, atomic).
pub struct OutDirSink {
    pub dir: OutDir,
    /// The run's identity, recorded so a later run can tell whether the file is its own.
    pub client_id: String,
    pub audience: String,
}

impl Sink for OutDirSink {
    fn kind(&self) -> SinkKind {
        SinkKind::OutDir
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

    fn store<'a>(&'a self, g: &'a Granted<'a>) -> BoxFuture<'a, Result<PathBuf, GrantError>> {
        Box::pin(async move {
            self.record(g.target, g.grant, g.token_host)
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
