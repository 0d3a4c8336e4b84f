//! Where sf keeps its encryption key (`lib/crypto/keyChain.js`): `~/.sfdx/key.json` (the
//! generic keychain), libsecret through `secret-tool` on Linux, or the login keychain through
//! `security` on macOS. Reuse the existing key, never replace it; create one as sf does when
//! there is none. The key never appears in an argument list (`ps` shows those to every user of
//! the machine), in a `Debug` print, or in a buffer left behind: it is handed over on pipes
//! and wiped from every buffer that held it.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

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

    fn read(&self) -> Result<Option<Zeroizing<String>>, SfStateError> {
        match self {
            Keychain::Generic(path) => read_key_json(path),
            Keychain::SecretTool(tool) => {
                let mut out = Command::new(tool)
                    .args(["lookup", "user", "local", "domain", "sfdx"])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| {
                        SfStateError::Key(format!("cannot run {}: {e}", tool.display()))
                    })?;
                let key = Zeroizing::new(String::from_utf8_lossy(&out.stdout).trim().to_string());
                out.stdout.zeroize();
                Ok((out.status.success() && !key.is_empty()).then_some(key))
            }
            Keychain::MacOs => macos_read(Path::new(MACOS_SECURITY)),
        }
    }

    #[expect(
        clippy::expect_used,
        reason = "serializing a JSON value to memory cannot fail"
    )]
    fn write(&self, key: &str) -> Result<(), SfStateError> {
        match self {
            Keychain::Generic(path) => {
                let file = KeyFile {
                    account: "local".into(),
                    key: key.into(),
                    service: "sfdx".into(),
                };
                let mut body = Zeroizing::new(Vec::new());
                let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
                let mut ser = serde_json::Serializer::with_formatter(&mut *body, formatter);
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
                        .write_all(Zeroizing::new(format!("{key}\n")).as_bytes())
                        .map_err(|e| SfStateError::Key(e.to_string()))?;
                }
                let status = child.wait().map_err(|e| SfStateError::Key(e.to_string()))?;
                status.success().then_some(()).ok_or_else(|| {
                    SfStateError::Key(format!("{} store failed ({status})", tool.display()))
                })
            }
            Keychain::MacOs => macos_write(Path::new(MACOS_SECURITY), key),
        }
    }
}

/// The macOS keychain tool, which sf itself reads and writes the key with.
const MACOS_SECURITY: &str = "/usr/bin/security";

/// The key in the login keychain, as sf reads it: `security find-generic-password -g` prints
/// it on stderr (a pipe) as `password: "<key>"`.
fn macos_read(tool: &Path) -> Result<Option<Zeroizing<String>>, SfStateError> {
    let mut out = Command::new(tool)
        .args(["find-generic-password", "-a", "local", "-s", "sfdx", "-g"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .map_err(|e| SfStateError::Key(format!("cannot run {}: {e}", tool.display())))?;
    let stderr = Zeroizing::new(String::from_utf8_lossy(&out.stderr).into_owned());
    out.stderr.zeroize();
    Ok(stderr
        .lines()
        .find_map(|l| l.strip_prefix("password: \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .map(|k| Zeroizing::new(k.to_string())))
}

/// Add the key to the login keychain without it ever being an argument: `security -i` reads
/// the command from its stdin. `security` itself creates the item, exactly as when sf creates
/// it, so the item's access list trusts `security` and sf reads it without a prompt (an item
/// made through Security.framework by fleetauth would trust fleetauth instead, and sf's read
/// would prompt, or fail on a headless CI runner). `add-generic-password` without `-U` never
/// replaces an item that appeared meanwhile; the interactive mode's exit status does not say
/// whether the command worked, so the key is read back.
fn macos_write(tool: &Path, key: &str) -> Result<(), SfStateError> {
    // Only ever a hex key (sf's own format): nothing in it can end the command line.
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SfStateError::Key(
            "refusing to store a key that is not hex".into(),
        ));
    }
    let mut child = Command::new(tool)
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| SfStateError::Key(format!("cannot run {}: {e}", tool.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        let command = Zeroizing::new(format!("add-generic-password -a local -s sfdx -w {key}\n"));
        stdin
            .write_all(command.as_bytes())
            .map_err(|e| SfStateError::Key(e.to_string()))?;
        // Dropping stdin ends the interactive session.
    }
    let status = child.wait().map_err(|e| SfStateError::Key(e.to_string()))?;
    match macos_read(tool)? {
        Some(stored) if stored.as_str() == key => Ok(()),
        // Another key was there first (an sf beside us): the caller reads and uses it.
        Some(_) => Err(SfStateError::Raced),
        None => Err(SfStateError::Key(format!(
            "{} add-generic-password failed ({status}): the login keychain may be locked (security unlock-keychain)",
            tool.display()
        ))),
    }
}

/// sf's key.json. `Debug` never shows the key, and the key is wiped when the file is dropped.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    account: String,
    key: String,
    service: String,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("account", &self.account)
            .field("key", &"[redacted]")
            .field("service", &self.service)
            .finish()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

fn read_key_json(path: &Path) -> Result<Option<Zeroizing<String>>, SfStateError> {
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
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| SfStateError::Io(format!("{}: {e}", path.display())))?,
    );
    let mut file: KeyFile = serde_json::from_str(&text)
        .map_err(|e| SfStateError::Key(format!("{} is not sf's key.json ({e})", path.display())))?;
    if file.account != "local" || file.service != "sfdx" {
        return Err(SfStateError::Key(format!(
            "The service and account specified in {} do not match the version of the toolbelt.",
            path.display()
        )));
    }
    Ok(Some(Zeroizing::new(std::mem::take(&mut file.key))))
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
    fn key_json_never_shows_its_key_in_debug() {
        let file = KeyFile {
            account: "local".into(),
            key: "0123456789abcdef0123456789abcdef".into(),
            service: "sfdx".into(),
        };
        let shown = format!("{file:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("local"),
            "{shown}"
        );
    }

    /// A stand-in for /usr/bin/security that logs its arguments and keeps one password.
    fn fake_security(dir: &Path) -> (PathBuf, PathBuf) {
        let (tool, args) = (dir.join("security"), dir.join("args.log"));
        let store = dir.join("store");
        std::fs::write(
            &tool,
            format!(
                r#"#!/bin/sh
echo "$@" >> {args}
case "$1" in
  -i) while read -r cmd a1 a2 a3 a4 w key; do
        [ "$cmd" = add-generic-password ] && [ ! -e {store} ] && printf %s "$key" > {store}
      done;;
  find-generic-password) [ -e {store} ] && printf 'keychain: "x"\npassword: "%s"\n' "$(cat {store})" >&2;;
esac
exit 0
"#,
                args = args.display(),
                store = store.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        (tool, args)
    }

    #[test]
    fn the_macos_key_goes_to_security_on_stdin_never_in_its_arguments() {
        let tmp = tempfile::tempdir().unwrap();
        let (tool, args) = fake_security(tmp.path());
        assert!(macos_read(&tool).unwrap().is_none());
        let key = "00112233445566778899aabbccddeeff";
        macos_write(&tool, key).unwrap();
        assert_eq!(
            macos_read(&tool).unwrap().as_deref().map(String::as_str),
            Some(key)
        );
        let log = std::fs::read_to_string(&args).unwrap();
        assert!(!log.contains(key), "the key was an argument: {log}");
        assert!(log.lines().any(|l| l == "-i"), "{log}");
        // A key already there is never replaced: the second writer is told it raced.
        let other = "ffeeddccbbaa99887766554433221100";
        assert!(matches!(
            macos_write(&tool, other),
            Err(SfStateError::Raced)
        ));
        assert_eq!(
            macos_read(&tool).unwrap().as_deref().map(String::as_str),
            Some(key)
        );
        assert!(
            macos_write(&tool, "abc -U x").is_err(),
            "only hex reaches the command line"
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
