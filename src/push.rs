//! Web Push, part one: the server's VAPID key (RFC 8292).
//!
//! The server makes a P-256 key pair on first start and keeps the private
//! scalar in `<data-dir>/vapid-key` (0600), like the JWT secret; on
//! PostgreSQL it lives in the database instead (`natter_meta`), generated
//! once, so every node signs pushes with the same key and browsers'
//! subscriptions (tied to the public key) stay valid whichever node sends.
//! `GET /push/key` gives the public key as `applicationServerKey` wants it:
//! the 65-byte uncompressed point, base64url without padding.
//!
//! Still to come (issue 17): subscriptions, sending (RFC 8030/8291), mute,
//! the service worker and manifest.

use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;

/// The VAPID key pair.
#[derive(Clone)]
pub struct VapidKey {
    secret: p256::SecretKey,
    /// The uncompressed public point, base64url without padding.
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half.
        write!(f, "VapidKey({})", self.public)
    }
}

impl VapidKey {
    /// A new random key pair.
    pub fn generate() -> VapidKey {
        loop {
            let bytes: [u8; 32] = rand::random();
            // A random 256-bit string is a valid scalar except with
            // probability ~2^-32 (zero or past the group order): draw again.
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                return VapidKey::from_secret(secret);
            }
        }
    }

    fn from_secret(secret: p256::SecretKey) -> VapidKey {
        let point = secret.public_key().to_encoded_point(false);
        VapidKey {
            public: URL_SAFE_NO_PAD.encode(point.as_bytes()),
            secret,
        }
    }

    /// The private scalar as stored: base64url, no padding.
    pub fn to_stored(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.to_bytes())
    }

    /// A key from [`VapidKey::to_stored`].
    pub fn from_stored(stored: &str) -> anyhow::Result<VapidKey> {
        let bytes = URL_SAFE_NO_PAD
            .decode(stored.trim())
            .context("the VAPID key is not base64url")?;
        let secret =
            p256::SecretKey::from_slice(&bytes).context("the VAPID key is not a P-256 scalar")?;
        Ok(VapidKey::from_secret(secret))
    }

    /// `<data-dir>/vapid-key`, made on first use (0600).
    pub fn load_or_create(path: &Path) -> anyhow::Result<VapidKey> {
        if let Ok(stored) = std::fs::read_to_string(path) {
            return VapidKey::from_stored(&stored).with_context(|| {
                format!("{} is damaged; delete it to generate a new one (browsers then subscribe again)", path.display())
            });
        }
        let key = VapidKey::generate();
        crate::config::write_private(path, key.to_stored().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(key)
    }

    /// The public key for `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        &self.public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_being_stored_and_its_public_half_is_a_65_byte_point() {
        let key = VapidKey::generate();
        let again = VapidKey::from_stored(&key.to_stored()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let point = URL_SAFE_NO_PAD.decode(key.public_key()).unwrap();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 4, "uncompressed");
        assert!(p256::PublicKey::from_sec1_bytes(&point).is_ok());
        assert!(!format!("{key:?}").contains(&key.to_stored()));
        assert!(VapidKey::from_stored("not a key").is_err());
    }
}
