//! Stage: store, for the Salesforce CLI. Writes each authorized org into sf's own state under
//! `$HOME` (`~/.sfdx/<username>.json` with sf's fields, order and encryption, `alias.json`,
//! `.sf/config.json` and its `sfdx-config.json` mirror), taking sf's `.lock` directories and
//! merging into what is there, so `sf` reads and refreshes these orgs as if it had logged in.
//! See `reference/sf-cli.md`.

pub mod crypto;
pub mod handoff;
pub mod keychain;
pub mod lock;
pub mod probe;
pub mod writer;

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::credentials::{KeyOrigin, SigningKey};
use crate::store::write_atomic;
use crypto::SfKey;
use keychain::Keychain;
use lock::FileLock;
pub use probe::OrgDetails;

#[derive(Debug, thiserror::Error)]
pub enum SfStateError {
    #[error("Salesforce CLI key: {0}")]
    Key(String),
    #[error("Salesforce CLI state: {0}")]
    Io(String),
    #[error("another process created the Salesforce CLI key at the same moment")]
    Raced,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SfStateError {
    SfStateError::Io(format!("{}: {e}", path.display()))
}

/// A path recorded as text in sf's files: UTF-8, or an error saying to rename or move it.
fn recorded(path: &Path) -> Result<&str, SfStateError> {
    path.to_str().ok_or_else(|| {
        SfStateError::Io(format!(
            "{} is not valid UTF-8, and sf records this path as text: rename or move it to a path whose name is UTF-8",
            crate::sanitize::shown(&path.to_string_lossy(), 200)
        ))
    })
}

/// sf's state under one home directory, opened once per run.
#[derive(Debug)]
pub struct SfState {
    home: PathBuf,
    sfdx: PathBuf,
    key: SfKey,
    /// Absolute path of the hub key that sf re-reads to refresh tokens.
    private_key: PathBuf,
    /// Serializes this process's own writers of alias.json and config; `.lock` covers others.
    shared_files: Mutex<()>,
    /// What opening the state did that the user should know.
    pub notes: Vec<String>,
}

/// One org as `sf org login jwt` records it. Holds the access token, so it has no `Debug`.
pub struct SfAuth<'a> {
    pub access_token: &'a str,
    pub org_id: &'a str,
    pub login_url: &'a str,
    pub client_id: &'a str,
    pub instance_url: &'a str,
    pub is_dev_hub: bool,
    pub username: &'a str,
    pub details: Option<&'a OrgDetails>,
    /// The locally authorized Dev Hub, recorded for scratch orgs.
    pub dev_hub: Option<&'a str>,
}

/// `path` made absolute against the working directory and normalized without touching the
/// file system (`.` dropped, `..` taken back), as Node's `path.resolve`, which sf uses, does.
pub fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl SfState {
    /// Open sf's state under `home`: find or create the encryption key where sf keeps it, and
    /// make sure the hub key exists as a file sf can read again.
    pub fn open(
        home: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        signing_key: &SigningKey,
    ) -> Result<Self, SfStateError> {
        // sf reads `privateKey` from wherever it runs: every path recorded is absolute.
        let home = &std::path::absolute(home).map_err(|e| io_err(home, e))?;
        let sfdx = home.join(".sfdx");
        // Recorded as text in every auth file (and their paths in report.json): a lossy copy
        // would name a file that does not exist. The commands refuse such paths earlier, by
        // flag; this is the last word, before anything is created.
        recorded(&sfdx)?;
        if !sfdx.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&sfdx)
                .map_err(|e| io_err(&sfdx, e))?;
        }
        let mut notes = Vec::new();
        let keychain = Keychain::select(&sfdx, env);
        let (key, created) = keychain.load_or_create(env)?;
        if created {
            notes.push(format!(
                "created a new Salesforce CLI encryption key ({keychain})"
            ));
        }
        let private_key = match &signing_key.origin {
            // The file as it is, unless it holds an encrypted key sf could not open.
            KeyOrigin::File(path)
                if !fs::read(path).is_ok_and(|b| &b != signing_key.pem.expose()) =>
            {
                path.clone()
            }
            origin => {
                let why = match origin {
                    KeyOrigin::Env(var) => format!("the key from ${var}"),
                    KeyOrigin::File(p) => format!(
                        "{} is encrypted (sf cannot open it to refresh tokens): its decrypted form",
                        p.display()
                    ),
                };
                // sf refreshes tokens by re-reading the key from a path: give it one, a file
                // per key that is never replaced, so orgs granted with another key keep theirs.
                let path = hub_key_path(&sfdx, signing_key);
                keep_hub_key(&path, signing_key)?;
                notes.push(format!(
                    "{why} is in {} (mode 0600) so that sf can refresh expired tokens",
                    path.display()
                ));
                path
            }
        };
        recorded(&absolute(&private_key))?;
        Ok(Self {
            home: home.to_path_buf(),
            sfdx,
            key,
            private_key,
            shared_files: Mutex::new(()),
            notes,
        })
    }

    pub fn auth_path(&self, username: &str) -> PathBuf {
        self.sfdx.join(format!("{username}.json"))
    }

    pub fn has_auth(&self, username: &str) -> bool {
        self.auth_path(username).is_file()
    }

    /// Write `~/.sfdx/<username>.json` as sf would (under its lock, replacing a previous
    /// login of the same user as sf does).
    pub fn write_auth(&self, auth: &SfAuth<'_>) -> Result<PathBuf, SfStateError> {
        let (path, body) = self.auth_file(auth)?;
        let _lock = FileLock::acquire(&path).map_err(|e| io_err(&path, e))?;
        write_atomic(&path, &body, 0o600).map_err(|e| io_err(&path, e))?;
        Ok(path)
    }

    /// Where `~/.sfdx/<username>.json` goes and its bytes, as sf writes them (token encrypted).
    pub fn auth_file(&self, auth: &SfAuth<'_>) -> Result<(PathBuf, Vec<u8>), SfStateError> {
        let path = self.auth_path(auth.username);
        let mut m = Map::new();
        let s = |v: &str| Value::String(v.to_string());
        m.insert(
            "accessToken".into(),
            s(&self.key.encrypt(auth.access_token)),
        );
        m.insert("orgId".into(), s(auth.org_id));
        m.insert("loginUrl".into(), s(auth.login_url));
        // sf re-reads the key from this path from any directory: absolute, as sf's own
        // `path.resolve` records it.
        m.insert(
            "privateKey".into(),
            s(recorded(&absolute(&self.private_key))?),
        );
        m.insert("clientId".into(), s(auth.client_id));
        m.insert("instanceUrl".into(), s(auth.instance_url));
        m.insert("isDevHub".into(), Value::Bool(auth.is_dev_hub));
        m.insert("username".into(), s(auth.username));
        if let Some(d) = auth.details {
            m.insert("instanceApiVersion".into(), s(&d.api_version));
            m.insert("instanceApiVersionLastRetrieved".into(), s(&d.retrieved));
            if let Some(org) = &d.organization {
                if let Some(name) = &org.name {
                    m.insert("name".into(), s(name));
                }
                m.insert("instanceName".into(), s(&org.instance_name));
                m.insert(
                    "namespacePrefix".into(),
                    org.namespace_prefix.as_deref().map_or(Value::Null, s),
                );
                m.insert(
                    "isSandbox".into(),
                    Value::Bool(org.is_sandbox && org.trial_expiration.is_none()),
                );
                m.insert("isScratch".into(), Value::Bool(org.is_scratch()));
                m.insert(
                    "trailExpirationDate".into(),
                    org.trial_expiration.as_deref().map_or(Value::Null, s),
                );
                m.insert("orgEdition".into(), s(&org.edition));
                if let (Some(hub), true) = (auth.dev_hub, org.is_scratch()) {
                    m.insert("devHubUsername".into(), s(hub));
                    let date = org
                        .trial_expiration
                        .as_deref()
                        .map_or("", |t| t.get(..10).unwrap_or(t));
                    m.insert("expirationDate".into(), s(date));
                }
            }
        }
        let body = serde_json::to_vec_pretty(&Value::Object(m)).map_err(|e| io_err(&path, e))?;
        Ok((path, body))
    }

    /// The aliases in `~/.sfdx/alias.json` (alias → username). An alias.json that does not
    /// parse is an error here, before anything is sent.
    pub fn aliases(&self) -> Result<Map<String, Value>, SfStateError> {
        let path = self.sfdx.join("alias.json");
        let root = read_object(&path)?;
        match root.get("orgs") {
            None => Ok(Map::new()),
            Some(Value::Object(orgs)) => Ok(orgs.clone()),
            Some(_) => Err(SfStateError::Io(format!(
                "{}: `orgs` is not an object; fix or remove it, then re-run (nothing in it was changed)",
                path.display()
            ))),
        }
    }

    /// Check the state sf keeps beside the auth files parses, before anything is sent.
    pub fn preflight(&self) -> Result<(), SfStateError> {
        self.aliases().map(|_| ())
    }

    /// Add aliases to `~/.sfdx/alias.json`, keeping every other entry. An alias that already
    /// names another username is left as it is unless `replace`; those are returned.
    #[expect(
        clippy::expect_used,
        reason = "the value was just made an object, and serializing a JSON value to memory cannot fail"
    )]
    pub fn add_aliases(
        &self,
        pairs: &[(String, String)],
        replace: bool,
    ) -> Result<Vec<String>, SfStateError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.sfdx.join("alias.json");
        // The guard protects no data, only the order of writers: a writer that panicked
        // leaves nothing half-done behind it.
        let _guard = self
            .shared_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _lock = FileLock::acquire(&path).map_err(|e| io_err(&path, e))?;
        let mut root = read_object(&path)?;
        let orgs = root
            .entry("orgs")
            .or_insert_with(|| Value::Object(Map::new()));
        if !orgs.is_object() {
            *orgs = Value::Object(Map::new());
        }
        let orgs = orgs.as_object_mut().expect("just made an object");
        let mut kept = Vec::new();
        for (alias, username) in pairs {
            let other = orgs
                .get(alias)
                .and_then(Value::as_str)
                .filter(|u| !u.eq_ignore_ascii_case(username));
            if let (Some(other), false) = (other, replace) {
                kept.push(format!("{alias} (names {other})"));
                continue;
            }
            orgs.insert(alias.clone(), Value::String(username.clone()));
        }
        let body = serde_json::to_vec(&Value::Object(root)).expect("alias.json always serializes");
        write_atomic(&path, &body, 0o600).map_err(|e| io_err(&path, e))?;
        Ok(kept)
    }

    /// Set `target-org` / `target-dev-hub` in the config sf would use from `cwd` (the project's
    /// when inside an SFDX project, else the global one), and in its `sfdx-config.json` mirror.
    #[expect(
        clippy::expect_used,
        reason = "serializing a JSON value to memory cannot fail"
    )]
    pub fn set_config(
        &self,
        cwd: &Path,
        entries: &[(&str, String)],
    ) -> Result<PathBuf, SfStateError> {
        if entries.is_empty() {
            return Ok(self.home.join(".sf/config.json"));
        }
        let root = project_root(cwd).unwrap_or_else(|| self.home.clone());
        // The guard protects no data, only the order of writers: a writer that panicked
        // leaves nothing half-done behind it.
        let _guard = self
            .shared_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let config = root.join(".sf").join("config.json");
        let legacy = root.join(".sfdx").join("sfdx-config.json");
        for (path, legacy_names) in [(&config, false), (&legacy, true)] {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            }
            // sf locks config.json; the mirror is written without a lock.
            let _lock = (!legacy_names)
                .then(|| FileLock::acquire(path))
                .transpose()
                .map_err(|e| io_err(path, e))?;
            let mut object = read_object(path)?;
            for (key, value) in entries {
                let key = match (*key, legacy_names) {
                    ("target-org", true) => "defaultusername",
                    ("target-dev-hub", true) => "defaultdevhubusername",
                    (k, _) => k,
                };
                object.insert(key.to_string(), Value::String(value.clone()));
            }
            let body = serde_json::to_vec_pretty(&Value::Object(object))
                .expect("config always serializes");
            write_atomic(path, &body, 0o644).map_err(|e| io_err(path, e))?;
        }
        Ok(config)
    }
}

/// Where a hub key given by the environment (or decrypted) is kept for sf: one file per key,
/// named by its fingerprint.
pub fn hub_key_path(sfdx: &Path, key: &SigningKey) -> PathBuf {
    sfdx.join(format!("fleetauth-hub-{}.key", key.fingerprint()))
}

/// Write `key` to `path` unless it is there already. A file there is never replaced: one that
/// holds another key (it was changed by hand) is an error, before anything is sent.
fn keep_hub_key(path: &Path, key: &SigningKey) -> Result<(), SfStateError> {
    if crate::store::write_new(path, key.pem.expose(), 0o600).map_err(|e| io_err(path, e))? {
        return Ok(());
    }
    let there = fs::read(path).map_err(|e| io_err(path, e))?;
    let same = there == *key.pem.expose()
        || crate::credentials::parse(there, KeyOrigin::File(path.to_path_buf()))
            .is_ok_and(|k| k.fingerprint() == key.fingerprint());
    if same {
        Ok(())
    } else {
        Err(SfStateError::Key(format!(
            "{} does not hold the key its name says; sf refreshes orgs from it, so fleetauth does not replace it: remove it if nothing uses it, then re-run",
            path.display()
        )))
    }
}

impl std::fmt::Display for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keychain::Generic(path) => write!(f, "in {}", path.display()),
            Keychain::SecretTool(tool) => write!(f, "in libsecret, through {}", tool.display()),
            Keychain::MacOs => write!(f, "in the macOS login keychain"),
        }
    }
}

/// The SFDX project containing `cwd` (a directory with sfdx-project.json), if any.
fn project_root(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors()
        .find(|d| d.join("sfdx-project.json").is_file())
        .map(Path::to_path_buf)
}

fn read_object(path: &Path) -> Result<Map<String, Value>, SfStateError> {
    match fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Map::new()),
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(SfStateError::Io(format!(
                "{} is not a JSON object; fix or remove it, then re-run (nothing in it was changed)",
                path.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(io_err(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials;

    fn state(home: &Path) -> SfState {
        let pem = std::fs::read(format!(
            "{}/fixtures/keys/server.key",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let key = credentials::parse(pem, KeyOrigin::File("/keys/server.key".into())).unwrap();
        SfState::open(
            home,
            &|v| (v == "SF_USE_GENERIC_UNIX_KEYCHAIN").then(|| "true".into()),
            &key,
        )
        .unwrap()
    }

    #[test]
    fn paths_are_made_absolute_and_normalized_like_node_path_resolve() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute(Path::new("/a/./b/../c.key")),
            Path::new("/a/c.key")
        );
        assert_eq!(
            absolute(Path::new("keys/../server.key")),
            cwd.join("server.key")
        );
        assert_eq!(absolute(Path::new("./k.pem")), cwd.join("k.pem"));
    }

    #[test]
    fn an_org_without_a_name_gets_no_name_key_and_a_relative_key_an_absolute_path() {
        let home = tempfile::tempdir().unwrap();
        let pem = std::fs::read(format!(
            "{}/fixtures/keys/server.key",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let key = credentials::parse(pem, KeyOrigin::File("keys/./../nokey.pem".into())).unwrap();
        let st = SfState::open(
            home.path(),
            &|v| (v == "SF_USE_GENERIC_UNIX_KEYCHAIN").then(|| "true".into()),
            &key,
        )
        .unwrap();
        let details = OrgDetails {
            api_version: "63.0".into(),
            retrieved: "11/23/2026, 7:09:21 PM".into(),
            organization: Some(probe::Organization {
                name: None,
                instance_name: "USA660S".into(),
                namespace_prefix: None,
                is_sandbox: true,
                trial_expiration: None,
                edition: "Developer Edition".into(),
            }),
        };
        let path = st
            .write_auth(&SfAuth {
                access_token: "00D5g000000ABCD!AQ0AQExampleAccessTokenValue",
                org_id: "00D5g000000ABCDEAA",
                login_url: "https://test.salesforce.com/",
                client_id: "3MVG9EXAMPLECONSUMERKEY",
                instance_url: "https://x.my.salesforce.com",
                is_dev_hub: false,
                username: "a@example.com",
                details: Some(&details),
                dev_hub: None,
            })
            .unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(v.get("name").is_none(), "sf leaves the key out: {v}");
        assert_eq!(v["instanceName"], "USA660S");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            v["privateKey"].as_str().unwrap(),
            cwd.join("nokey.pem").display().to_string()
        );
    }

    #[test]
    fn auth_file_has_sfs_fields_in_sfs_order_encrypted_with_sfs_key() {
        let home = tempfile::tempdir().unwrap();
        let st = state(home.path());
        let details = OrgDetails {
            api_version: "63.0".into(),
            retrieved: "11/23/2026, 7:09:21 PM".into(),
            organization: Some(probe::Organization {
                name: Some("Acme".into()),
                instance_name: "USA660S".into(),
                namespace_prefix: None,
                is_sandbox: true,
                trial_expiration: Some("2026-12-01T00:00:00.000+0000".into()),
                edition: "Developer Edition".into(),
            }),
        };
        let path = st
            .write_auth(&SfAuth {
                access_token: "00D5g000000ABCD!AQ0AQExampleAccessTokenValue",
                org_id: "00D5g000000ABCDEAA",
                login_url: "https://test.salesforce.com/",
                client_id: "3MVG9EXAMPLECONSUMERKEY",
                instance_url: "https://power-ruby-4821-dev-ed.scratch.my.salesforce.com",
                is_dev_hub: false,
                username: "test-kq8xyzab1c2d@example.com",
                details: Some(&details),
                dev_hub: Some("hub@example.com"),
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.ends_with('\n'));
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "accessToken",
                "orgId",
                "loginUrl",
                "privateKey",
                "clientId",
                "instanceUrl",
                "isDevHub",
                "username",
                "instanceApiVersion",
                "instanceApiVersionLastRetrieved",
                "name",
                "instanceName",
                "namespacePrefix",
                "isSandbox",
                "isScratch",
                "trailExpirationDate",
                "orgEdition",
                "devHubUsername",
                "expirationDate"
            ]
        );
        assert!(text.contains("\n  \"orgId\": \"00D5g000000ABCDEAA\",\n"));
        assert_eq!(v["namespacePrefix"], Value::Null);
        assert_eq!(v["isScratch"], true);
        assert_eq!(v["isSandbox"], false);
        assert_eq!(v["expirationDate"], "2026-12-01");
        assert_eq!(v["privateKey"], "/keys/server.key");
        assert_eq!(
            st.key.decrypt(v["accessToken"].as_str().unwrap()).unwrap(),
            "00D5g000000ABCD!AQ0AQExampleAccessTokenValue"
        );
        assert!(!text.contains("ExampleAccessToken"));
        assert!(!path.with_extension("json.lock").exists());
    }

    #[test]
    fn aliases_merge_into_existing_entries_from_many_writers() {
        let home = tempfile::tempdir().unwrap();
        let st = std::sync::Arc::new(state(home.path()));
        std::fs::write(
            home.path().join(".sfdx/alias.json"),
            r#"{"orgs":{"hub":"hub@example.com"}}"#,
        )
        .unwrap();
        let writers: Vec<_> = (0..16)
            .map(|i| {
                let st = std::sync::Arc::clone(&st);
                std::thread::spawn(move || {
                    st.add_aliases(&[(format!("s{i}"), format!("u{i}@x.com"))], false)
                        .unwrap()
                })
            })
            .collect();
        writers.into_iter().for_each(|w| {
            w.join().unwrap();
        });
        let text = std::fs::read_to_string(home.path().join(".sfdx/alias.json")).unwrap();
        assert!(
            !text.contains('\n') && text.starts_with(r#"{"orgs":{"hub":"hub@example.com""#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["orgs"].as_object().unwrap().len(), 17);
    }

    #[test]
    fn config_goes_to_the_project_when_inside_one_and_is_mirrored() {
        let home = tempfile::tempdir().unwrap();
        let st = state(home.path());
        let global = st
            .set_config(Path::new("/"), &[("target-dev-hub", "hub".into())])
            .unwrap();
        assert_eq!(global, home.path().join(".sf/config.json"));
        let project = tempfile::tempdir().unwrap();
        std::fs::write(project.path().join("sfdx-project.json"), "{}").unwrap();
        let nested = project.path().join("force-app/main");
        std::fs::create_dir_all(&nested).unwrap();
        let local = st
            .set_config(&nested, &[("target-org", "scr".into())])
            .unwrap();
        assert_eq!(local, project.path().join(".sf/config.json"));
        let mirror: Value = serde_json::from_str(
            &std::fs::read_to_string(project.path().join(".sfdx/sfdx-config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(mirror["defaultusername"], "scr");
        st.set_config(Path::new("/"), &[("target-org", "scr2".into())])
            .unwrap();
        let g: Value = serde_json::from_str(&std::fs::read_to_string(global).unwrap()).unwrap();
        assert_eq!(
            g,
            serde_json::json!({"target-dev-hub": "hub", "target-org": "scr2"})
        );
    }

    /// sf records the key's path as text: a key file or a home whose path is not UTF-8 is
    /// refused when the state is opened, before any grant, never recorded as `\u{FFFD}`s.
    #[test]
    fn a_key_or_home_path_that_is_not_utf8_is_refused_on_open() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff\xfe"));
        std::fs::create_dir(&bad).unwrap();
        let pem = std::fs::read(format!(
            "{}/fixtures/keys/server.key",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let env = |_: &str| Some("true".to_string());
        let key_file = bad.join("server.key");
        std::fs::write(&key_file, &pem).unwrap();
        let in_file = credentials::parse(pem.clone(), KeyOrigin::File(key_file)).unwrap();
        let err = SfState::open(&dir.path().join("home"), &env, &in_file).unwrap_err();
        assert!(err.to_string().contains("rename or move it"), "{err}");
        let from_env = credentials::parse(pem, KeyOrigin::Env("SFDX_HUB_KEY")).unwrap();
        let err = SfState::open(&bad, &env, &from_env).unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert!(!bad.join(".sfdx").exists(), "nothing is created there");
    }

    #[test]
    fn an_env_key_is_written_once_to_a_private_file_for_refreshes() {
        let home = tempfile::tempdir().unwrap();
        let pem = std::fs::read(format!(
            "{}/fixtures/keys/server.key",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let key = credentials::parse(pem.clone(), KeyOrigin::Env("SFDX_HUB_KEY")).unwrap();
        let st = SfState::open(home.path(), &|_| Some("true".into()), &key).unwrap();
        assert_eq!(std::fs::read(&st.private_key).unwrap(), pem);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&st.private_key).unwrap().mode() & 0o777,
            0o600
        );
        assert!(st.notes.iter().any(|n| n.contains("$SFDX_HUB_KEY")));
    }

    #[test]
    fn each_env_key_gets_its_own_file_and_none_is_replaced() {
        let home = tempfile::tempdir().unwrap();
        let env = |_: &str| Some("true".to_string());
        let read = |name: &str| {
            std::fs::read(format!(
                "{}/fixtures/keys/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let first = credentials::parse(read("server.key"), KeyOrigin::Env("SFDX_HUB_KEY")).unwrap();
        let second = credentials::parse(read("other.key"), KeyOrigin::Env("SFDX_HUB_KEY")).unwrap();
        let a = SfState::open(home.path(), &env, &first)
            .unwrap()
            .private_key;
        let b = SfState::open(home.path(), &env, &second)
            .unwrap()
            .private_key;
        assert_ne!(a, b, "one file per key");
        assert!(std::fs::read(&a).unwrap() == read("server.key"));
        assert!(std::fs::read(&b).unwrap() == read("other.key"));
        // The same key again (in another format) finds its file.
        let again =
            credentials::parse(read("server.pkcs8.key"), KeyOrigin::Env("SFDX_HUB_KEY")).unwrap();
        assert_eq!(
            SfState::open(home.path(), &env, &again)
                .unwrap()
                .private_key,
            a
        );
        assert!(
            std::fs::read(&a).unwrap() == read("server.key"),
            "never replaced"
        );
        // A file changed by hand is not replaced either: an error, before anything is sent.
        std::fs::write(&a, read("other.key")).unwrap();
        let err = SfState::open(home.path(), &env, &first).unwrap_err();
        assert!(err.to_string().contains("does not hold the key"), "{err}");
    }
}
