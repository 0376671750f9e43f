//! Passwords (argon2id) and login tokens (HS256 JWT), and the [`AuthUser`]
//! extractor: a handler that takes it cannot run unauthenticated.
//!
//! Tokens: the algorithm is pinned to HS256 (`alg: none` and every other
//! algorithm fail), `exp`, `iat` and `sub` are required, and `ver` must match
//! the user's `token_version`, so disabling an account or resetting its
//! password revokes its tokens. A disabled or deleted user is refused even
//! with an unexpired token. Tokens and passwords are never logged.

use std::sync::OnceLock;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::model::UserId;
use crate::state::AppState;

/// Name of the cookie that authenticates `GET /uploads/...` in browsers.
pub const COOKIE_NAME: &str = "natter_token";

/// Claims of a natter token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (JWT convention).
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// The user's token version when issued.
    pub ver: i64,
}

fn ensure_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

/// Signs a token for `user`.
pub fn issue_token(secret: &[u8], user: UserId, version: i64, ttl_secs: u64) -> AppResult<String> {
    ensure_crypto_provider();
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub: user.to_string(),
        exp: now + ttl_secs,
        iat: now,
        ver: version,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot sign token: {e}")))
}

/// Checks signature, algorithm and claims; returns the claims.
pub fn verify_token(secret: &[u8], token: &str) -> AppResult<Claims> {
    ensure_crypto_provider();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    validation.validate_exp = true;
    validation.leeway = 5;
    let data = decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
        .map_err(|_| AppError::Unauthorized("invalid or expired token".into()))?;
    Ok(data.claims)
}

/// Verifies a token and that its user may still use it.
pub async fn authenticate(state: &AppState, token: &str) -> AppResult<UserId> {
    let claims = verify_token(&state.config().jwt_secret, token)?;
    let user: UserId = claims
        .sub
        .parse()
        .map_err(|_| AppError::Unauthorized("invalid or expired token".into()))?;
    let creds = state.db().credentials_by_id(user).await?;
    match creds {
        Some(c) if !c.disabled && c.token_version == claims.ver => Ok(user),
        _ => Err(AppError::Unauthorized("invalid or expired token".into())),
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `natter_token` cookie of a request, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// The authenticated caller (from `Authorization: Bearer`).
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    /// The caller's id.
    pub id: UserId,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?;
        let id = authenticate(state, token).await?;
        tracing::Span::current().record("user.id", id.0);
        Ok(AuthUser { id })
    }
}

/// Password hashes that run at once: argon2 runs take 19 MiB each, so a
/// burst of sign-ups or logins costs bounded memory and leaves CPU for chat
/// traffic.
const HASH_SLOTS: usize = 2;

/// Requests waiting for a hashing slot at most; more fail fast with 503 and
/// `Retry-After` instead of parking (a burst of bogus logins must not make a
/// real one wait for many seconds). A hash takes ~50 ms on one core, so a
/// full queue drains in about half a second.
pub const MAX_HASH_QUEUE: usize = 16;

/// The hashing slots of one app, and its bounded queue for them.
pub struct HashSlots {
    slots: tokio::sync::Semaphore,
    /// Requests waiting for or holding a slot.
    queued: std::sync::atomic::AtomicUsize,
}

impl Default for HashSlots {
    fn default() -> Self {
        HashSlots {
            slots: tokio::sync::Semaphore::new(HASH_SLOTS),
            queued: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// A hashing slot; gives its queue place back when dropped.
struct HashPermit<'a> {
    _slot: tokio::sync::SemaphorePermit<'a>,
    _place: QueuePlace<'a>,
}

struct QueuePlace<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl HashSlots {
    async fn permit(&self) -> AppResult<HashPermit<'_>> {
        use std::sync::atomic::Ordering;
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_HASH_QUEUE + HASH_SLOTS {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::Busy {
                retry_after_secs: 1,
            });
        }
        let place = QueuePlace(&self.queued);
        let slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("hash permit: {e}")))?;
        Ok(HashPermit {
            _slot: slot,
            _place: place,
        })
    }
}

/// Hashes a password with argon2id (off the async threads).
pub async fn hash_password(slots: &HashSlots, password: String) -> AppResult<String> {
    let _permit = slots.permit().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("hash: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
}

/// Checks a password against a stored hash (off the async threads). With no
/// hash (unknown user) it still does the work, so timing does not tell.
pub async fn verify_password(
    slots: &HashSlots,
    password: String,
    hash: Option<String>,
) -> AppResult<bool> {
    let _permit = slots.permit().await?;
    tokio::task::spawn_blocking(move || {
        static DUMMY: OnceLock<String> = OnceLock::new();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut OsRng);
                    Argon2::default()
                        .hash_password(b"natter-timing-equaliser", &salt)
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        let ok = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        known && ok
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let token = issue_token(SECRET, UserId(7), 0, 60).unwrap();
        assert_eq!(verify_token(SECRET, &token).unwrap().sub, "7");
        assert!(verify_token(b"another-secret-another-secret!!", &token).is_err());
        let mut tampered = token.clone();
        tampered.pop();
        assert!(verify_token(SECRET, &tampered).is_err());
    }

    #[test]
    fn bearer_and_cookie_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        h.insert(header::COOKIE, "a=1; natter_token=xyz".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(cookie_token(&h), Some("xyz"));
    }
}
