//! One org's access token, as `fleetauth token` and `fleetauth open` get it (shared by both,
//! so neither command imports the other). The org's auth file in the out dir is reused while it
//! is younger than `--max-age` (and, with `--verify`, its session still answers); otherwise the
//! fleet grants this one org, with `grant`'s retries, and rewrites it.
//!
//! The token is returned to the caller, never printed here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::TokenArgs;
use crate::commands::setup::{handoff, SetupError};
use crate::config::GrantConfig;
use crate::fleet::{Fleet, Sinks, Status};
use crate::input::{self, Origin, Target};
use crate::secret::Secret;
use crate::stop::Stopper;
use crate::store::{AuthFile, OutDir};
use crate::tls::Network;
use crate::token::TokenClient;

mod resolve;

use resolve::Resolved;

/// An authenticated call that every session may make, cheap, and answered 401
/// `INVALID_SESSION_ID` once the session is gone. (`/services/data` itself needs no session.)
const VERIFY_PATH: &str = "/services/data/v62.0/";

#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{0}")]
    Failed(String),
    #[error("interrupted before the grant finished")]
    Interrupted,
}

impl From<crate::config::ConfigError> for TokenError {
    fn from(e: crate::config::ConfigError) -> Self {
        TokenError::Setup(e.into())
    }
}

impl From<crate::store::StoreError> for TokenError {
    fn from(e: crate::store::StoreError) -> Self {
        TokenError::Setup(e.into())
    }
}

/// One org's token and what goes with it, read from its auth file.
#[derive(Clone)]
pub(crate) struct Issued {
    pub username: String,
    pub alias: Option<String>,
    pub org_id: Option<String>,
    pub instance_url: String,
    pub access_token: Secret<String>,
    pub issued_at: Option<String>,
    /// The `aud` it was granted with (CumulusCI's descriptor says `sandbox` for test).
    pub audience: Option<String>,
    pub auth_file: PathBuf,
    /// Taken from an existing auth file rather than granted now.
    pub reused: bool,
}

/// The auth file at `path` and its age, if there is a readable one.
fn read_auth_file(path: &Path) -> Option<(Issued, Duration)> {
    let (file, age) = AuthFile::read(path).ok()?;
    let issued = Issued {
        username: file.username,
        alias: file.alias,
        org_id: Some(file.org_id).filter(|id| !id.is_empty()),
        instance_url: file.instance_url,
        access_token: file.access_token,
        issued_at: Some(file.issued_at).filter(|t| !t.is_empty()),
        audience: Some(file.audience).filter(|a| !a.is_empty()),
        auth_file: path.to_path_buf(),
        reused: true,
    };
    Some((issued, age))
}

/// The org's auth file from an earlier grant, if it holds what fleetauth writes: this org, a
/// session id, a checked instance URL (whatever its age). What is wrong with it is a warning.
fn earlier_grant(
    out: &OutDir,
    username: &str,
    hosts: &crate::urls::HostPolicy,
    warnings: &mut Vec<String>,
) -> Option<(Issued, Duration)> {
    let path = out.find_auth(username)?;
    let (issued, age) = read_auth_file(&path)?;
    match crate::token::check_stored(issued.access_token.expose(), &issued.instance_url, hosts) {
        Ok(url) if issued.username.eq_ignore_ascii_case(username) => Some((
            Issued {
                instance_url: url,
                alias: issued.alias.filter(|a| input::check_alias(a).is_ok()),
                ..issued
            },
            age,
        )),
        Ok(_) => {
            warnings.push(format!(
                "{} is not the auth file of {username}; granting anew",
                path.display()
            ));
            None
        }
        Err(why) => {
            warnings.push(format!(
                "{} is not an auth file fleetauth wrote ({why}); granting anew",
                path.display()
            ));
            None
        }
    }
}

/// `earlier` if it may be handed out as it is: younger than `--max-age` and, with `--verify`,
/// still accepted by its org.
async fn reusable(
    earlier: Option<&(Issued, Duration)>,
    args: &TokenArgs,
    config: &GrantConfig,
) -> Result<Option<Issued>, TokenError> {
    let Some((issued, _)) = earlier.filter(|(_, age)| *age < args.max_age) else {
        return Ok(None);
    };
    if !args.verify {
        return Ok(Some(issued.clone()));
    }
    match session_is_valid(issued, &config.network, config.request_timeout).await {
        Ok(true) => Ok(Some(issued.clone())),
        Ok(false) => {
            crate::say_err!(
                "fleetauth: the session of {} has expired (401 INVALID_SESSION_ID); granting a new token",
                issued.username
            );
            Ok(None)
        }
        Err(e) => Err(TokenError::Failed(format!(
            "cannot verify the token of {}: {e}",
            issued.username
        ))),
    }
}

/// The token of the org `args.org` names: its fresh auth file, or a new grant. How it is
/// handed over (`--format`) is the caller's business.
pub(crate) async fn obtain(
    args: TokenArgs,
    warnings: &mut Vec<String>,
) -> Result<Issued, TokenError> {
    let env = |var: &str| std::env::var(var).ok();
    // Everything that can be checked without sending anything, first.
    let config = GrantConfig::for_token(&args, &env)?;
    // Trust settings that could not be used are said on every run, as by grant.
    warnings.extend(config.network.warnings.iter().cloned());
    // Reading takes no lock: auth files are replaced whole by rename. Only a grant, which
    // writes, waits for the out dir.
    let out = OutDir::open_unlocked(&config.out_dir)?;
    let sf_home = config.sf.as_ref().map(|s| s.home.clone());
    let Resolved {
        username,
        alias,
        instance_url,
    } = resolve::resolve(args.org(), &out, &args.lists, sf_home.as_deref(), warnings)
        .map_err(TokenError::Usage)?;

    let earlier = earlier_grant(&out, &username, &config.network.hosts, warnings);
    let instance_url = earlier
        .as_ref()
        .map(|(e, _)| e.instance_url.clone())
        .or(instance_url);
    let alias = alias.or_else(|| earlier.as_ref().and_then(|(e, _)| e.alias.clone()));
    // A report handed over from elsewhere names the host first tried: it must be one a
    // signed assertion may go to, as for any list row.
    if let Some(url) = &instance_url {
        config.network.hosts.row_host(url).map_err(|e| {
            TokenError::Usage(format!(
                "the instance URL of {username} ({}): {e}",
                crate::sanitize::shown(url, 120)
            ))
        })?;
    }
    if let Some(issued) = reusable(earlier.as_ref(), &args, &config).await? {
        return Ok(issued);
    }

    // A grant or another `token` may hold the out dir for a moment: wait for it, briefly.
    let out = out.lock_waiting(Duration::from_secs(30)).await?;
    // Another `token` may have granted this org while this one waited: a file that changed
    // since it was first read is looked at again, so the org is not granted twice.
    let seen = earlier.as_ref().map(|(e, _)| e.access_token.clone());
    let now = earlier_grant(&out, &username, &config.network.hosts, &mut Vec::new())
        .filter(|(e, _)| seen.as_ref() != Some(&e.access_token));
    if let Some(issued) = reusable(now.as_ref(), &args, &config).await? {
        return Ok(issued);
    }

    // Grant this one org through the fleet: the same retries, files and sf state as `grant`.
    let mut target = Target {
        username: username.clone(),
        alias,
        instance_url,
        origin: Origin::Entry(1),
        record: Vec::new(),
        place: 0,
    };
    let path = out.auth_file(&username);
    if let Some(options) = &config.hub {
        target = check_with_hub(options, &config, &out, target, warnings).await?;
    }
    grant(config, out, target, warnings).await?;
    read_auth_file(&path)
        .map(|(mut issued, _)| {
            issued.reused = false;
            issued
        })
        .ok_or_else(|| {
            TokenError::Failed(format!(
                "{username} was authorized, but its auth file {} cannot be read back",
                path.display()
            ))
        })
}

/// `-v`: the org is looked up in the Dev Hub before anything is sent for it; one that is not
/// the hub's, Deleted, in Error or expired fails at once. A row without an instance URL gets
/// the hub's `LoginUrl`.
#[expect(
    clippy::expect_used,
    reason = "the list handed to the hub holds exactly the one target just built"
)]
async fn check_with_hub(
    options: &crate::hub::HubOptions,
    config: &GrantConfig,
    out: &OutDir,
    target: Target,
    warnings: &mut Vec<String>,
) -> Result<Target, TokenError> {
    let cache = crate::hub::cache::path(out.path(), options, config.signer.client_id());
    let list = input::OrgList {
        source: "token".into(),
        columns: Vec::new(),
        targets: vec![target],
        excluded: Vec::new(),
    };
    let (list, hub) = crate::hub::vet::prepare(
        options,
        &config.signer,
        &config.network,
        config.request_timeout,
        Some(&cache),
        Some(list),
        warnings,
    )
    .await
    .map_err(SetupError::from)?;
    let target = list
        .targets
        .into_iter()
        .next()
        .expect("the list holds the one target");
    if let Some(w) = hub.expiring(std::slice::from_ref(&target), options.warn_expiring) {
        warnings.push(w);
    }
    match hub.refusal(&target.username) {
        Some(e) => Err(TokenError::Failed(format!(
            "{} was not authorized (nothing was sent for it): {}: {}{}",
            target.username,
            e.code,
            e.description,
            e.hint
                .as_ref()
                .map(|h| format!("\n  fix: {h}"))
                .unwrap_or_default()
        ))),
        None => Ok(target),
    }
}

#[expect(
    clippy::expect_used,
    reason = "a fleet of one target ends with exactly one outcome"
)]
async fn grant(
    config: GrantConfig,
    out: OutDir,
    target: Target,
    warnings: &mut Vec<String>,
) -> Result<(), TokenError> {
    let sf = match &config.sf {
        Some(options) => Some(handoff(options, &config, warnings)?),
        None => None,
    };
    let client =
        TokenClient::new(config.request_timeout, 1, &config.network).map_err(SetupError::from)?;
    let stop = Stopper::new();
    stop.on_signals();
    let sinks = Sinks::for_run(out, &config.signer, &config.host, sf);
    let fleet = Arc::new(Fleet::new(
        client,
        config.signer,
        config.policy,
        config.limits,
        config.host,
        sinks,
        stop,
    ));
    let username = target.username.clone();
    let outcome = Arc::clone(&fleet)
        .run(&[target], |_| {})
        .await
        .into_iter()
        .next()
        .expect("one outcome per target");
    // What sf's state could not take is said (as a warning: the token itself is good).
    let closing = fleet.sinks().finish().await;
    warnings.extend(closing.warnings.into_iter().chain(closing.errors));
    match (outcome.status, outcome.error) {
        (Status::Authorized, _) => Ok(()),
        (Status::Pending, _) => Err(TokenError::Interrupted),
        (_, Some(e)) => Err(TokenError::Failed(format!(
            "{username} was not authorized: {}: {}{}",
            e.code,
            e.description,
            e.hint.map(|h| format!("\n  fix: {h}")).unwrap_or_default()
        ))),
        (_, None) => Err(TokenError::Failed(format!("{username} was not authorized"))),
    }
}

/// One authenticated call with the token: `Ok(false)` when the session has expired (401).
async fn session_is_valid(
    issued: &Issued,
    network: &Network,
    timeout: Duration,
) -> Result<bool, String> {
    // The instance URL came from a file: hold it to the rule for hosts named by data, so a
    // token goes only to Salesforce (or loopback, or an --allow-host), never over plain http.
    let base = network.hosts.row_host(&issued.instance_url)?;
    let url = base
        .join(VERIFY_PATH)
        .map_err(|e| format!("`{}` is no base URL ({e})", issued.instance_url))?;
    let http = crate::sfstate::probe::client(network, timeout).map_err(|e| e.to_string())?;
    let response = http
        .get(url.clone())
        .bearer_auth(issued.access_token.expose())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {e}"))?;
    match response.status().as_u16() {
        200..=299 => Ok(true),
        401 => Ok(false),
        status => Err(format!("GET {url} answered {status}")),
    }
}
