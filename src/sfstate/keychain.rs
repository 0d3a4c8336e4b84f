//! Where sf keeps its encryption key (`lib/crypto/keyChain.js`): `~/.sfdx/key.json` (the
//! generic keychain), libsecret through `secret-tool` on Linux, or the login keychain through
//! `security` on macOS. Reuse the existing key, never replace it; create one as sf does when
//! there is none.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::crypto::SfKey;
use super::SfStateError;
use crate::store::write_new;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keychain {
    /// `~/.sfdx/key.json`, mode 0600.
    Generic(PathBuf),
    /// libsecret, through this `secret-tool`.
    SecretTool(PathBuf),
    /// macOS login keychain.
    MacOs,
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Keychain {
    /// The keychain sf would use, by its own rules.
    pub fn select(sfdx_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let generic = Keychain::Generic(sfdx_dir.join("key.json"));
        if truthy(env("SF_USE_GENERIC_UNIX_KEYCHAIN"))
            || truthy(env("SFDX_USE_GENERIC_UNIX_KEYCHAIN"))
        {
            return generic;
        }
        if cfg!(target_os = "macos") {
            return Keychain::MacOs;
        }
        let tool = env("SFDX_SECRET_TOOL_PATH")
            .map_or_else(|| PathBuf::from("/usr/bin/secret-tool"), PathBuf::from);
        if is_executable(&tool) {
            Keychain::SecretTool(tool)
        } else {
            generic
        }
    }

    /// The existing key, or a new one (v1 unless `SF_CRYPTO_V2=true`) stored where sf looks.
    /// The flag says whether the key was created.
    pub fn load_or_create(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(SfKey, bool), SfStateError> {
        if let Some(stored) = self.read()? {
            return Ok((
                SfKey::parse(&stored).map_err(|e| SfStateError::Key(e.to_string()))?,
                false,
            ));
        }
        let key = SfKey::generate(truthy(env("SF_CRYPTO_V2")));
        match self.write(key.stored()) {
            Ok(()) => Ok((key, true)),
            // Someone else's key won the race: use it, as every token depends on one key.
            Err(SfStateError::Raced) => {
                let stored = self.read()?.ok_or(SfStateError::Raced)?;
                Ok((
                    SfKey::parse(&stored).map_err(|e| SfStateError::Key(e.to_string()))?,
                    false,
                ))
            }
            Err(e) => Err(e),
        }
    }

    fn read(&self) -> Result<Option<String>, SfStateError> {
        match self {
            Keychain::Generic(path) => read_key_json(path),
            Keychain::SecretTool(tool) => {
                let out = Command::new(tool)
                    .args(["lookup", "user", "local", "domain", "sfdx"])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| {
                        SfStateError::Key(format!("cannot run {}: {e}", tool.display()))
                    })?;
                let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
                Ok((out.status.success() && !key.is_empty()).then_some(key))
            }
            Keychain::MacOs => {
                let out = Command::new("/usr/bin/security")
                    .args(["find-generic-password", "-a", "local", "-s", "sfdx", "-g"])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| SfStateError::Key(format!("cannot run security: {e}")))?;
                // The key is on stderr as `password: "<key>"`.
                let stderr = String::from_utf8_lossy(&out.stderr);
                Ok(stderr
                    .lines()
                    .find_map(|l| l.strip_prefix("password: \""))
                    .and_then(|rest| rest.strip_suffix('"'))
                    .map(str::to_string))
            }
        }
    }

    fn write(&self, key: &str) -> Result<(), SfStateError> {
        match self {
            Keychain::Generic(path) => {
                let file = KeyFile {
                    account: "local".into(),
                    key: key.into(),
                    service: "sfdx".into(),
                };
                let mut body = Vec::new();
                let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
                let mut ser = serde_json::Serializer::with_formatter(&mut body, formatter);
                file.serialize(&mut ser)
                    .expect("key.json always serializes");
                // Never replace a key.json that appeared meanwhile (an sf beside us).
                write_new(path, &body, 0o600)
                    .map_err(|e| SfStateError::Io(e.to_string()))?
                    .then_some(())
                    .ok_or(SfStateError::Raced)
            }
            Keychain::SecretTool(tool) => {
                let mut child = Command::new(tool)
                    .args([
                        "store",
                        "--label=salesforce.com",
                        "user",
                        "local",
                        "domain",
                        "sfdx",
                    ])
                    .stdin(Stdio::piped())
                    .spawn()
                    .map_err(|e| {
                        SfStateError::Key(format!("cannot run {}: {e}", tool.display()))
                    })?;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin
                        .write_all(format!("{key}\n").as_bytes())
                        .map_err(|e| SfStateError::Key(e.to_string()))?;
                }
                let status = child.wait().map_err(|e| SfStateError::Key(e.to_string()))?;
                status.success().then_some(()).ok_or_else(|| {
                    SfStateError::Key(format!("{} store failed ({status})", tool.display()))
                })
            }
            Keychain::MacOs => {
                let status = Command::new("/usr/bin/security")
                    .args([
                        "add-generic-password",
                        "-a",
                        "local",
                        "-s",
                        "sfdx",
                        "-w",
                        key,
                    ])
                    .stdin(Stdio::null())
                    .status()
                    .map_err(|e| SfStateError::Key(format!("cannot run security: {e}")))?;
                status
                    .success()
                    .then_some(())
                    .ok_or_else(|| SfStateError::Key("security add-generic-password failed".into()))
            }
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyFile {
    account: String,
    key: String,
    service: String,
}

fn read_key_json(path: &Path) -> Result<Option<String>, SfStateError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SfStateError::Io(format!("{}: {e}", path.display()))),
    };
    if meta.mode() & 0o777 != 0o600 {
        return Err(SfStateError::Key(format!(
            "Invalid file permissions for secret file: {} (sf requires mode 600: chmod 600 {})",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SfStateError::Io(format!("{}: {e}", path.display())))?;
    let file: KeyFile = serde_json::from_str(&text)
        .map_err(|e| SfStateError::Key(format!("{} is not sf's key.json ({e})", path.display())))?;
    if file.account != "local" || file.service != "sfdx" {
        return Err(SfStateError::Key(format!(
            "The service and account specified in {} do not match the version of the toolbelt.",
            path.display()
        )));
    }
    Ok(Some(file.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn generic_key_is_created_once_as_sf_does_then_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let chain = Keychain::Generic(tmp.path().join("key.json"));
        let (key, created) = chain.load_or_create(&no_env).unwrap();
        assert!(created);
        let text = std::fs::read_to_string(tmp.path().join("key.json")).unwrap();
        assert_eq!(text, format!("{{\n    \"account\": \"local\",\n    \"key\": \"{}\",\n    \"service\": \"sfdx\"\n}}", key.stored()));
        assert_eq!(key.stored().len(), 32);
        let mode = std::fs::metadata(tmp.path().join("key.json"))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = chain.load_or_create(&no_env).unwrap();
        assert!(!created);
        assert_eq!(again.stored(), key.stored());
    }

    #[test]
    fn v2_keys_are_created_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let chain = Keychain::Generic(tmp.path().join("key.json"));
        let (key, _) = chain
            .load_or_create(&|v| (v == "SF_CRYPTO_V2").then(|| "true".into()))
            .unwrap();
        assert_eq!(key.stored().len(), 64);
    }

    #[test]
    fn a_key_json_with_loose_permissions_is_refused_like_sf_does() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("key.json");
        std::fs::write(
            &path,
            r#"{"account":"local","key":"0123456789abcdef0123456789abcdef","service":"sfdx"}"#,
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keychain::Generic(path).load_or_create(&no_env).unwrap_err();
        assert!(
            err.to_string().contains("Invalid file permissions"),
            "{err}"
        );
    }

    #[test]
    fn secret_tool_is_used_when_present_and_generic_is_not_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let tool = tmp.path().join("secret-tool");
        std::fs::write(
            &tool,
            format!("#!/bin/sh\ncase \"$1\" in\n lookup) cat {0} 2>/dev/null;;\n store) cat > {0};;\nesac\n", store.display()),
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tool_s = tool.display().to_string();
        let env = move |v: &str| (v == "SFDX_SECRET_TOOL_PATH").then(|| tool_s.clone());
        let chain = Keychain::select(tmp.path(), &env);
        assert_eq!(chain, Keychain::SecretTool(tool.clone()));
        let (key, created) = chain.load_or_create(&env).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::read_to_string(&store).unwrap(),
            format!("{}\n", key.stored())
        );
        let (again, created) = chain.load_or_create(&env).unwrap();
        assert!(!created);
        assert_eq!(again.stored(), key.stored());
        let forced = Keychain::select(tmp.path(), &|v| match v {
            "SF_USE_GENERIC_UNIX_KEYCHAIN" => Some("true".into()),
            _ => None,
        });
        assert_eq!(forced, Keychain::Generic(tmp.path().join("key.json")));
    }
}
