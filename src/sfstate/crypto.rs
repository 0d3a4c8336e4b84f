//! sfdx-core's value encryption (`lib/crypto/crypto.js`): AES-256-GCM, 16-byte tag, no AAD,
//! stored as `<ivHex><ciphertextHex>:<tagHex>`. v1 keys (32 hex chars) use the hex string's
//! own ASCII bytes as the AES key and 12 hex ASCII characters as the IV; v2 keys (64 hex chars)
//! are decoded, with 12 random IV bytes.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The key sf keeps in key.json or the OS keychain.
pub struct SfKey {
    hex: Secret<String>,
    version: Version,
    aead: LessSafeKey,
}

impl std::fmt::Debug for SfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SfKey({:?}, [redacted])", self.version)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error(
        "the Salesforce CLI key is {0} characters long; expected 32 (v1) or 64 (v2) hex characters"
    )]
    BadKey(usize),
    #[error("The encrypted data is not properly formatted.")]
    Format,
    #[error("Failed to decipher auth data: wrong key or tampered value")]
    Decipher,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl SfKey {
    /// Parse a stored key; the version follows from its length, as in sfdx-core.
    pub fn parse(stored: &str) -> Result<Self, CryptoError> {
        let stored = stored.trim();
        let (version, key_bytes) = match stored.len() {
            32 if unhex(stored).is_some() => (Version::V1, stored.as_bytes().to_vec()),
            64 => (Version::V2, unhex(stored).ok_or(CryptoError::BadKey(64))?),
            n => return Err(CryptoError::BadKey(n)),
        };
        let key_bytes = zeroize::Zeroizing::new(key_bytes);
        let unbound = UnboundKey::new(&AES_256_GCM, &key_bytes)
            .map_err(|_| CryptoError::BadKey(stored.len()))?;
        Ok(Self {
            hex: Secret::new(stored.to_string()),
            version,
            aead: LessSafeKey::new(unbound),
        })
    }

    /// A new random key, v1 unless `v2` (sf's `SF_CRYPTO_V2=true`).
    #[expect(
        clippy::expect_used,
        reason = "the OS random source does not fail, and a key made of its bytes parses"
    )]
    pub fn generate(v2: bool) -> Self {
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; if v2 { 32 } else { 16 }]);
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the OS random source works");
        Self::parse(&zeroize::Zeroizing::new(hex(&bytes))).expect("a generated key is valid")
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The stored form of the key (for key.json or the keychain).
    pub fn stored(&self) -> &str {
        self.hex.expose()
    }

    fn nonce_for(&self, iv_text: &str) -> Option<Nonce> {
        let bytes = match self.version {
            Version::V1 => iv_text.as_bytes().to_vec(),
            Version::V2 => unhex(iv_text)?,
        };
        Nonce::try_assume_unique_for_key(&bytes).ok()
    }

    fn iv_len(&self) -> usize {
        match self.version {
            Version::V1 => 12,
            Version::V2 => 24,
        }
    }

    #[expect(
        clippy::expect_used,
        reason = "the OS random source and AES-GCM sealing of an in-memory buffer with a 12-byte IV do not fail"
    )]
    pub fn encrypt(&self, plaintext: &str) -> String {
        let rng = SystemRandom::new();
        let iv_text = match self.version {
            Version::V1 => {
                let mut iv = [0u8; 6];
                rng.fill(&mut iv).expect("the OS random source works");
                hex(&iv)
            }
            Version::V2 => {
                let mut iv = [0u8; 12];
                rng.fill(&mut iv).expect("the OS random source works");
                hex(&iv)
            }
        };
        let nonce = self.nonce_for(&iv_text).expect("a fresh IV is 12 bytes");
        let mut buffer = plaintext.as_bytes().to_vec();
        let tag = self
            .aead
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut buffer)
            .expect("AES-GCM sealing of a short value cannot fail");
        format!("{iv_text}{}:{}", hex(&buffer), hex(tag.as_ref()))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let (body, tag) = stored.split_once(':').ok_or(CryptoError::Format)?;
        if tag.contains(':') || tag.len() != 32 || body.len() < self.iv_len() {
            return Err(CryptoError::Format);
        }
        let (iv_text, ct_hex) = body.split_at(self.iv_len());
        let nonce = self.nonce_for(iv_text).ok_or(CryptoError::Format)?;
        let mut buffer = unhex(ct_hex).ok_or(CryptoError::Format)?;
        buffer.extend(unhex(tag).ok_or(CryptoError::Format)?);
        let plain = self
            .aead
            .open_in_place(nonce, Aad::empty(), &mut buffer)
            .map_err(|_| CryptoError::Decipher)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Decipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "00D5g000000ABCD!AQ0AQExampleAccessTokenValue";

    #[test]
    fn decrypts_the_reference_v1_vector() {
        let key = SfKey::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(key.version(), Version::V1);
        let stored = "a1b2c3d4e5f6170cab215b883014b0ac853df3a7b5f156f898d121304ace2f03ff6cd90c05a696ffd7a20b6908626953f2f3:8ba6d355ab9dc1da74db0b79d26566d1";
        assert_eq!(key.decrypt(stored).unwrap(), PLAIN);
    }

    #[test]
    fn decrypts_the_reference_v2_vector() {
        let key = SfKey::parse("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
            .unwrap();
        assert_eq!(key.version(), Version::V2);
        let stored = "0102030405060708090a0b0c4a4241958f279571dac88b802eac5b3332cf93b666b49e2241e298ca0d54462d36ad17d3aa1ad2c560db45f1:cab82165134b5c7a00e57fa23f81f78e";
        assert_eq!(key.decrypt(stored).unwrap(), PLAIN);
    }

    #[test]
    fn round_trips_with_the_stored_shape_of_each_version() {
        for v2 in [false, true] {
            let key = SfKey::generate(v2);
            let stored = key.encrypt(PLAIN);
            let (body, tag) = stored.split_once(':').unwrap();
            assert_eq!(tag.len(), 32);
            assert_eq!(body.len(), key.iv_len() + PLAIN.len() * 2);
            assert!(stored
                .chars()
                .all(|c| c == ':' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
            assert_eq!(key.decrypt(&stored).unwrap(), PLAIN);
            assert_ne!(key.encrypt(PLAIN), stored, "a fresh IV every time");
        }
    }

    #[test]
    fn wrong_key_and_bad_format_are_errors() {
        let stored = SfKey::generate(false).encrypt(PLAIN);
        assert_eq!(
            SfKey::generate(false).decrypt(&stored),
            Err(CryptoError::Decipher)
        );
        assert_eq!(
            SfKey::generate(false).decrypt("nocolon"),
            Err(CryptoError::Format)
        );
        assert!(matches!(SfKey::parse("abc"), Err(CryptoError::BadKey(3))));
    }
}
