//! One org's auth file in the out dir (`<username>.json`, 0600): what it holds, its bytes, and
//! how it is read back. Written by the out dir's sink; read by `grant` (is it fresh?), the
//! report (what a skipped org carries) and `token` (reuse, aliases). Nothing else parses one.
//!
//! The file is named as the Salesforce CLI looks an org up: the username in lower case (sf
//! lower-cases what ScratchOrgInfo keeps), so one org has one file whatever the list's spelling.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// An auth file is a few hundred bytes: anything much larger is not one (and is not read whole).
const MAX_BYTES: u64 = 64 * 1024;

/// The file name of `username`'s auth file: as sf looks it up, in lower case.
pub fn file_name(username: &str) -> String {
    format!("{}.json", username.to_lowercase())
}

/// An org's auth file. Holds the access token: no `Debug`, and the token is a [`Secret`].
#[derive(Clone)]
pub struct AuthFile {
    pub username: String,
    pub org_id: String,
    pub user_id: String,
    pub access_token: Secret<String>,
    pub instance_url: String,
    /// The host the token was granted by.
    pub login_url: String,
    pub audience: String,
    pub client_id: String,
    pub alias: Option<String>,
    pub issued_at: String,
}

/// The file's fields on disk, in their order. Fields missing from a file written by hand or by
/// an older version read as empty; the readers check what they need.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<T> {
    #[serde(default)]
    username: T,
    #[serde(default)]
    org_id: T,
    #[serde(default)]
    user_id: T,
    #[serde(default)]
    access_token: T,
    #[serde(default)]
    instance_url: T,
    #[serde(default)]
    login_url: T,
    #[serde(default)]
    audience: T,
    #[serde(default)]
    client_id: T,
    #[serde(default)]
    alias: Option<T>,
    #[serde(default)]
    issued_at: T,
}

/// Why a path holds no usable auth file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it does not exist")]
    Missing,
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is larger than an auth file can be ({0} bytes)")]
    TooLarge(u64),
    #[error("it cannot be read ({0})")]
    Io(std::io::Error),
    #[error("it is not an auth file ({0})")]
    Parse(serde_json::Error),
}

impl AuthFile {
    /// The file's bytes: pretty JSON and a newline.
    #[expect(
        clippy::expect_used,
        reason = "an auth file holds only strings, which always serialize"
    )]
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            username: self.username.as_str(),
            org_id: &self.org_id,
            user_id: &self.user_id,
            access_token: self.access_token.expose().as_str(),
            instance_url: &self.instance_url,
            login_url: &self.login_url,
            audience: &self.audience,
            client_id: &self.client_id,
            alias: self.alias.as_deref(),
            issued_at: &self.issued_at,
        };
        let mut body = serde_json::to_vec_pretty(&wire).expect("an auth file always serializes");
        body.push(b'\n');
        body
    }

    /// Parse an auth file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReadError> {
        let wire: Wire<String> = serde_json::from_slice(bytes).map_err(ReadError::Parse)?;
        Ok(Self {
            username: wire.username,
            org_id: wire.org_id,
            user_id: wire.user_id,
            access_token: Secret::new(wire.access_token),
            instance_url: wire.instance_url,
            login_url: wire.login_url,
            audience: wire.audience,
            client_id: wire.client_id,
            alias: wire.alias,
            issued_at: wire.issued_at,
        })
    }

    /// Read the auth file at `path`, and how long ago it was written. A symlink, a FIFO, a
    /// device or a directory is no auth file (and opening a FIFO does not wait for a writer).
    pub fn read(path: &Path) -> Result<(Self, Duration), ReadError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ReadError::Missing,
                // O_NOFOLLOW on a symlink.
                _ if e.raw_os_error() == Some(libc::ELOOP) => ReadError::NotAFile,
                _ => ReadError::Io(e),
            })?;
        let meta = file.metadata().map_err(ReadError::Io)?;
        if !meta.is_file() {
            return Err(ReadError::NotAFile);
        }
        if meta.len() > MAX_BYTES {
            return Err(ReadError::TooLarge(meta.len()));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.take(MAX_BYTES)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        let parsed = Self::parse(&bytes)?;
        // The older of the file's time and the `issuedAt` it records (a restored cache keeps
        // neither honest alone); a time in the future makes no file fresh.
        let modified = meta.modified().ok().and_then(|m| m.elapsed().ok());
        let issued = time::OffsetDateTime::parse(
            &parsed.issued_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
        .and_then(|t| Duration::try_from(time::OffsetDateTime::now_utc() - t).ok());
        let age = match (modified, issued) {
            (Some(m), Some(i)) => m.max(i),
            _ => Duration::MAX,
        };
        Ok((parsed, age))
    }

    /// The same org as `username` (usernames are case-insensitive).
    pub fn is_of(&self, username: &str) -> bool {
        self.username.to_lowercase() == username.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> AuthFile {
        AuthFile {
            username: "A.User@X.com".into(),
            org_id: "00D".into(),
            user_id: "005".into(),
            access_token: Secret::new("tok".into()),
            instance_url: "https://x".into(),
            login_url: "https://test.salesforce.com".into(),
            audience: "https://test.salesforce.com".into(),
            client_id: "c".into(),
            alias: Some("one".into()),
            issued_at: "2026-11-23T00:00:00Z".into(),
        }
    }

    #[test]
    fn an_auth_file_reads_back_as_written_with_its_fields_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.json");
        std::fs::write(&path, sample().to_json()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "username",
                "orgId",
                "userId",
                "accessToken",
                "instanceUrl",
                "loginUrl",
                "audience",
                "clientId",
                "alias",
                "issuedAt"
            ]
        );
        let (back, age) = AuthFile::read(&path).unwrap();
        // The older of the file's time (now) and its issuedAt (2026-11-23).
        assert!(age > Duration::from_secs(86400), "{age:?}");
        assert_eq!(back.to_json(), sample().to_json());
        assert!(back.is_of("a.user@x.com") && !back.is_of("b@x.com"));
    }

    #[test]
    fn what_is_no_auth_file_is_named_and_a_fifo_does_not_hang() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("none.json");
        assert!(matches!(AuthFile::read(&missing), Err(ReadError::Missing)));
        let fifo = tmp.path().join("fifo.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(AuthFile::read(&fifo), Err(ReadError::NotAFile)));
        let link = tmp.path().join("link.json");
        let real = tmp.path().join("real.json");
        std::fs::write(&real, sample().to_json()).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(AuthFile::read(&link), Err(ReadError::NotAFile)));
        let big = tmp.path().join("big.json");
        std::fs::write(&big, vec![b' '; 70_000]).unwrap();
        assert!(matches!(AuthFile::read(&big), Err(ReadError::TooLarge(_))));
        let markdown = tmp.path().join("md.json");
        std::fs::write(&markdown, "# Summary\n").unwrap();
        assert!(matches!(
            AuthFile::read(&markdown),
            Err(ReadError::Parse(_))
        ));
    }

    #[test]
    fn file_names_are_lower_case() {
        assert_eq!(
            file_name("Test.User@Example.com"),
            "test.user@example.com.json"
        );
    }
}
