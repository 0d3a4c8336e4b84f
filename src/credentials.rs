//! Credentials: the connected app's consumer key and the Dev Hub's private key, loaded and
//! checked once per run. The key is parsed here and nowhere else; what is found in a file that
//! is not a usable RSA private key is named in the error.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::Engine as _;

use crate::secret::Secret;

pub const MIN_BITS: usize = 2048;

/// Where the key came from, for messages (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    File(PathBuf),
    Env(&'static str),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::File(p) => write!(f, "{}", p.display()),
            KeyOrigin::Env(var) => write!(f, "${var}"),
        }
    }
}

/// A parsed RSA private key, ready to sign assertions: parsed and checked once, then used
/// for every signature (aws-lc-rs).
pub struct SigningKey {
    pair: RsaKeyPair,
    pub bits: usize,
    pub origin: KeyOrigin,
    /// The PEM text, kept to hand the key on (for example to the Salesforce CLI's state).
    pub pem: Secret<Vec<u8>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("bits", &self.bits)
            .field("origin", &self.origin)
            .field("key", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no private key given: pass --jwt-key-file server.key, or set SFDX_HUB_KEY (PEM text) or SFDX_HUB_KEY_BASE64")]
    Missing,
    #[error("cannot read the key file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("$SFDX_HUB_KEY_BASE64 is not valid base64 ({0}); set it to the output of `base64 -w0 server.key`")]
    Base64(String),
    #[error("{origin} is not a usable private key: {found}")]
    Unusable { origin: KeyOrigin, found: String },
    #[error("the key {key} does not match the certificate {certificate}: Salesforce would answer `invalid assertion` for every org; pass the server.key that {certificate} was made from, or upload the matching certificate to the connected app")]
    Mismatch { key: KeyOrigin, certificate: String },
    #[error("${0} (named by --jwt-key-passphrase-env) is not set")]
    NoPassphrase(String),
    /// Not shown: the value is the key.
    #[error("--jwt-key-file (-f) names a file, and this value looks like the key's text itself: pass the file's path, or put the PEM text in $SFDX_HUB_KEY (or its base64 in $SFDX_HUB_KEY_BASE64) and drop -f")]
    TextNotPath,
    /// Not shown: a passphrase given in place of the variable's name would be printed.
    #[error("--jwt-key-passphrase-env takes the name of the environment variable that holds the passphrase (e.g. HUB_KEY_PASS), not the passphrase itself")]
    NotAVariable,
}

/// An environment variable's name as shells write it: `[A-Za-z_][A-Za-z0-9_]*`, at most 128.
fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 128
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Load the key from `--jwt-key-file`, else `SFDX_HUB_KEY`, else `SFDX_HUB_KEY_BASE64`.
pub fn load(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SigningKey, KeyError> {
    load_with(file, env, None)
}

/// [`load`], with the name of the environment variable holding an encrypted key's passphrase.
pub fn load_with(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
    passphrase_var: Option<&str>,
) -> Result<SigningKey, KeyError> {
    let passphrase = match passphrase_var {
        Some(var) if !is_variable_name(var) => return Err(KeyError::NotAVariable),
        Some(var) => Some(Secret::new(
            env(var).ok_or_else(|| KeyError::NoPassphrase(var.to_string()))?,
        )),
        None => None,
    };
    let passphrase = passphrase.as_ref();
    let parse = |bytes, origin| parse_with(bytes, origin, passphrase);
    if let Some(path) = file {
        let named = path.to_string_lossy();
        if crate::sanitize::without_key_material(&named) != named {
            return Err(KeyError::TextNotPath);
        }
        let bytes = crate::files::read_small(path, crate::files::KEY_CAP).map_err(|error| {
            KeyError::Io {
                path: path.to_path_buf(),
                error,
            }
        })?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return parse(bytes, KeyOrigin::File(absolute));
    }
    if let Some(text) = env("SFDX_HUB_KEY").filter(|t| !t.trim().is_empty()) {
        return parse(text.into_bytes(), KeyOrigin::Env("SFDX_HUB_KEY"));
    }
    if let Some(b64) = env("SFDX_HUB_KEY_BASE64").filter(|t| !t.trim().is_empty()) {
        let compact: String = b64.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| KeyError::Base64(e.to_string()))?;
        return parse(bytes, KeyOrigin::Env("SFDX_HUB_KEY_BASE64"));
    }
    Err(KeyError::Missing)
}

/// Parse PEM text holding an RSA private key (PKCS#1 or PKCS#8) of at least 2048 bits.
pub fn parse(bytes: Vec<u8>, origin: KeyOrigin) -> Result<SigningKey, KeyError> {
    parse_with(bytes, origin, None)
}

/// [`parse`], decrypting an encrypted PKCS#8 key with `passphrase`.
pub fn parse_with(
    bytes: Vec<u8>,
    origin: KeyOrigin,
    passphrase: Option<&Secret<String>>,
) -> Result<SigningKey, KeyError> {
    let unusable = |found: String| KeyError::Unusable {
        origin: origin.clone(),
        found,
    };
    let blocks = pem::parse_many(&bytes).map_err(|e| unusable(format!("malformed PEM ({e})")))?;
    if blocks.is_empty() {
        return Err(unusable(
            "no PEM block; expected a file starting with -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----".into(),
        ));
    }
    // A bundle may hold the certificate too: use its private key.
    let found = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .or(blocks.first())
        .ok_or_else(|| unusable("no PEM block".into()))?;
    if found
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.contains("ENCRYPTED"))
    {
        return Err(unusable(
            "a key encrypted in the legacy OpenSSL format; convert it to encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in server.key -out server.p8.key` and pass --jwt-key-passphrase-env".into(),
        ));
    }
    let decrypted;
    let block = if found.tag() == "ENCRYPTED PRIVATE KEY" {
        let Some(passphrase) = passphrase else {
            return Err(unusable(
                "an encrypted private key; name the environment variable holding its passphrase with --jwt-key-passphrase-env VAR".into(),
            ));
        };
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(found.contents()).map_err(|e| {
            unusable(format!(
                "an encrypted key whose structure does not parse ({e})"
            ))
        })?;
        let document = info.decrypt(passphrase.expose().as_bytes()).map_err(|_| {
            unusable("an encrypted private key that this passphrase does not open (wrong passphrase, or an unsupported cipher)".into())
        })?;
        decrypted = pem::Pem::new("PRIVATE KEY", document.as_bytes().to_vec());
        &decrypted
    } else {
        found
    };
    let pair = match block.tag() {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(block.contents()),
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(block.contents()),
        "EC PRIVATE KEY" => {
            return Err(unusable(
                "an EC key; Salesforce's JWT flow signs with RS256 only, so generate an RSA key (openssl genrsa 2048)".into(),
            ))
        }
        "CERTIFICATE" => {
            return Err(unusable(
                "a certificate (the server.crt uploaded to the connected app); pass the private key it was made from (server.key)".into(),
            ))
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {
            return Err(unusable(
                "a public key; pass the private key (server.key) whose certificate is in the connected app".into(),
            ))
        }
        other => return Err(unusable(format!("a PEM block of type `{other}`, not a private key"))),
    };
    let pair = pair.map_err(|rejected| {
        unusable(match rejected.to_string().as_str() {
            "TooSmall" => {
                format!("an RSA key under {MIN_BITS} bits; generate a 2048-bit or larger key")
            }
            "WrongAlgorithm" => {
                "a PKCS#8 key that is not RSA (EC or Ed25519?); Salesforce accepts RSA keys only"
                    .into()
            }
            why => format!("an RSA private key that does not parse ({why})"),
        })
    })?;
    let bits = pair.public_modulus_len() * 8;
    if bits < MIN_BITS {
        return Err(unusable(format!(
            "a {bits}-bit RSA key; generate a {MIN_BITS}-bit or larger key"
        )));
    }
    // What sf gets to re-read for refreshes: the key as it was given (decrypted: sf has no
    // passphrase support).
    let pem = if found.tag() == "ENCRYPTED PRIVATE KEY" {
        pem::encode(block).into_bytes()
    } else {
        bytes
    };
    Ok(SigningKey {
        pair,
        bits,
        origin,
        pem: Secret::new(pem),
    })
}

impl SigningKey {
    /// The key's fingerprint: the SHA-256 of its public key (DER), in lower-case hex. The same
    /// key has the same fingerprint in any file format (PKCS#1, PKCS#8, decrypted).
    pub fn fingerprint(&self) -> String {
        use aws_lc_rs::signature::KeyPair as _;
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.pair.public_key().as_ref());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RS256: the RSASSA-PKCS1-v1_5 SHA-256 signature of `message`.
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        // aws-lc-rs ignores this argument (kept for ring's signature): AWS-LC draws the RSA
        // blinding values from its own generator.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)?;
        Ok(signature)
    }
}

/// Check that `key` is the one whose certificate `cert_pem` (server.crt) holds, by signing a
/// probe and verifying it with the certificate's public key.
pub fn check_certificate(
    key: &SigningKey,
    cert_pem: &[u8],
    cert_name: &str,
) -> Result<(), KeyError> {
    let unusable = |found: String| KeyError::Unusable {
        origin: KeyOrigin::File(cert_name.into()),
        found,
    };
    let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(cert_pem)
        .map_err(|e| unusable(format!("not an RSA certificate or public key ({e})")))?;
    let probe = b"fleetauth key/certificate check";
    let signature = key
        .sign_rs256(probe)
        .map_err(|e| unusable(format!("cannot sign the probe ({e})")))?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
    let matches =
        jsonwebtoken::crypto::verify(&signature, probe, &decoding, jsonwebtoken::Algorithm::RS256)
            .unwrap_or(false);
    if matches {
        Ok(())
    } else {
        Err(KeyError::Mismatch {
            key: key.origin.clone(),
            certificate: cert_name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/fixtures/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn origin() -> KeyOrigin {
        KeyOrigin::File("k".into())
    }

    #[test]
    fn pkcs1_and_pkcs8_keys_load() {
        assert_eq!(parse(fixture("server.key"), origin()).unwrap().bits, 2048);
        assert_eq!(
            parse(fixture("server.pkcs8.key"), origin()).unwrap().bits,
            2048
        );
    }

    #[test]
    fn wrong_material_is_named() {
        let cases = [
            ("server.crt", "a certificate"),
            ("server.pub", "a public key"),
            ("weak1024.key", "under 2048 bits"),
            ("ec.pkcs8.key", "not RSA"),
            ("garbage.key", "no PEM block"),
        ];
        for (file, expected) in cases {
            let err = parse(fixture(file), origin()).unwrap_err().to_string();
            assert!(err.contains(expected), "{file}: {err}");
        }
    }

    #[test]
    fn env_vars_are_read_in_order() {
        let pem = String::from_utf8(fixture("server.key")).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&pem);
        let key = load(None, |v| (v == "SFDX_HUB_KEY_BASE64").then(|| b64.clone())).unwrap();
        assert_eq!(key.origin, KeyOrigin::Env("SFDX_HUB_KEY_BASE64"));
        let key = load(None, |_| Some(pem.clone())).unwrap();
        assert_eq!(key.origin, KeyOrigin::Env("SFDX_HUB_KEY"));
        assert!(matches!(load(None, |_| None), Err(KeyError::Missing)));
        let bad = load(None, |v| {
            (v == "SFDX_HUB_KEY_BASE64").then(|| "%%%".to_string())
        });
        assert!(matches!(bad, Err(KeyError::Base64(_))));
    }

    #[test]
    fn encrypted_pkcs8_keys_open_with_their_passphrase_only() {
        let right = Secret::new("correct-horse".to_string());
        let key = parse_with(fixture("server.encrypted.key"), origin(), Some(&right)).unwrap();
        assert_eq!(key.bits, 2048);
        assert!(
            String::from_utf8_lossy(key.pem.expose()).starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let wrong = Secret::new("battery-staple".to_string());
        let err = parse_with(fixture("server.encrypted.key"), origin(), Some(&wrong)).unwrap_err();
        assert!(
            err.to_string().contains("passphrase does not open"),
            "{err}"
        );
        let none = parse(fixture("server.encrypted.key"), origin()).unwrap_err();
        assert!(
            none.to_string().contains("--jwt-key-passphrase-env"),
            "{none}"
        );
        let legacy = parse_with(
            fixture("server.legacy-encrypted.key"),
            origin(),
            Some(&right),
        )
        .unwrap_err();
        assert!(
            legacy.to_string().contains("openssl pkcs8 -topk8"),
            "{legacy}"
        );
        let missing = load_with(Some(Path::new("x")), |_| None, Some("NOPE")).unwrap_err();
        assert!(matches!(missing, KeyError::NoPassphrase(_)));
    }

    #[test]
    fn the_key_is_checked_against_the_certificate() {
        let key = parse(fixture("server.key"), origin()).unwrap();
        check_certificate(&key, &fixture("server.crt"), "server.crt").unwrap();
        let other = parse(fixture("other.key"), origin()).unwrap();
        let err = check_certificate(&other, &fixture("server.crt"), "server.crt").unwrap_err();
        assert!(matches!(err, KeyError::Mismatch { .. }), "{err}");
        let garbage = check_certificate(&key, b"nope", "nope.crt").unwrap_err();
        assert!(
            garbage.to_string().contains("not an RSA certificate"),
            "{garbage}"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_key_loader(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = parse(bytes, origin());
        }

        #[test]
        fn arbitrary_pem_bodies_are_rejected_with_a_message(
            tag in "(RSA PRIVATE KEY|PRIVATE KEY|ENCRYPTED PRIVATE KEY|CERTIFICATE|PUBLIC KEY|X)",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        ) {
            let text = pem::encode(&pem::Pem::new(tag, body));
            let err = parse(text.into_bytes(), origin()).expect_err("random bytes are not a key");
            proptest::prop_assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = parse(fixture("server.key"), origin()).unwrap();
        let shown = format!("{key:?}");
        assert!(
            !shown.contains("MII") && shown.contains("[redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn a_fingerprint_names_the_key_not_its_file_format() {
        let pkcs1 = parse(fixture("server.key"), origin()).unwrap();
        let pkcs8 = parse(fixture("server.pkcs8.key"), origin()).unwrap();
        let other = parse(fixture("other.key"), origin()).unwrap();
        assert_eq!(pkcs1.fingerprint().len(), 64);
        assert_eq!(pkcs1.fingerprint(), pkcs8.fingerprint());
        assert_ne!(pkcs1.fingerprint(), other.fingerprint());
    }
}
