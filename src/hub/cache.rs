//! The hub's token between commands: `<out>/.hub/<fingerprint>.json` (0600, in a 0700
//! directory), apart from the orgs' auth files, so it is never counted, listed or handed on
//! as an org. The fingerprint covers the hub user, consumer key, token host and audience; a
//! file is reused while younger than [`FRESH`] and what it holds passes the checks a stored
//! auth file passes (`token::check_stored`). A hub login costs one of the 3,600 per hour.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{HubOptions, Session};
use crate::secret::Secret;
use crate::urls::HostPolicy;

/// A cached hub token is reused while younger than this (sessions last 2 h by default).
pub const FRESH: Duration = Duration::from_secs(90 * 60);

/// The directory under the out dir that holds hub tokens.
pub const DIR: &str = ".hub";

/// The cache file of one hub identity in `out`.
pub fn path(out: &Path, options: &HubOptions, client_id: &str) -> PathBuf {
    let identity = format!(
        "{}\n{client_id}\n{}\n{}",
        options.username.to_lowercase(),
        crate::urls::display(&options.host),
        options.audience
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, identity.as_bytes());
    let hex: String = digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    out.join(DIR).join(format!("{hex}.json"))
}

/// The file's content. Holds the token: no `Debug`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cached {
    username: String,
    instance_url: String,
    access_token: String,
    /// Seconds since the epoch.
    issued_at: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The cached session at `path`, if it is fresh, this hub's, and holds what a grant would.
pub fn read(path: &Path, username: &str, hosts: &HostPolicy) -> Option<Session> {
    let meta = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())?;
    if meta.len() > 64 * 1024 {
        return None;
    }
    let cached: Cached = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let age = now().checked_sub(cached.issued_at)?;
    if age >= FRESH.as_secs() || !cached.username.eq_ignore_ascii_case(username) {
        return None;
    }
    let url = crate::token::check_stored(&cached.access_token, &cached.instance_url, hosts).ok()?;
    Some(Session {
        username: cached.username,
        instance_url: Url::parse(&url).ok()?,
        token: Secret::new(cached.access_token),
        reused: true,
    })
}

/// Keep `session` for the next command; a failure only costs a login next time.
pub fn write(path: &Path, session: &Session) -> Result<(), String> {
    let dir = path.parent().ok_or("no cache directory")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
    }
    let cached = Cached {
        username: session.username.clone(),
        instance_url: session.instance_url.origin().ascii_serialization(),
        access_token: session.token.expose().clone(),
        issued_at: now(),
    };
    let mut bytes = serde_json::to_vec_pretty(&cached).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    crate::store::write_atomic(path, &bytes, 0o600).map_err(|e| e.to_string())
}

/// Forget a cached session the hub no longer accepts.
pub fn forget(path: &Path) {
    let _ = std::fs::remove_file(path);
}
