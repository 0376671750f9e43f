//! Web Push subscriptions: validation, then the store.
//!
//! The server will POST to a subscription's endpoint, so an endpoint is an
//! SSRF door: it must be `https://` (≤ 1,024 bytes) and must not name a
//! loopback, private, link-local, unique-local, multicast, unspecified or
//! carrier-grade-NAT address, nor `localhost`. A host name is resolved again
//! and checked when a push is sent, connecting only to the checked address
//! (DNS can change after subscribing). `--push-allow-private` lifts these
//! rules for tests and says so in `--help`.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::db::store::push::NewSubscription;
use crate::error::{AppError, AppResult};
use crate::model::UserId;
use crate::state::AppState;

/// Longest endpoint URL, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 1024;

/// `POST /push/subscriptions`: what `PushSubscription.toJSON()` gives.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The push service URL for this browser or device.
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

/// The browser's keys (RFC 8291).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionKeys {
    /// Its P-256 public key: the 65-byte uncompressed point, base64url.
    pub p256dh: String,
    /// Its 16-byte authentication secret, base64url.
    pub auth: String,
}

/// `DELETE /push/subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Unsubscribe {
    pub endpoint: String,
}

/// Stores a subscription for the caller: `true` when new, `false` when
/// the same endpoint was replaced.
pub async fn subscribe(state: &AppState, caller: UserId, sub: Subscription) -> AppResult<bool> {
    let endpoint = valid_endpoint(&sub.endpoint, state.config().push_allow_private)?;
    let p256dh = decode("keys.p256dh", &sub.keys.p256dh)?;
    if p256dh.len() != 65 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
        return Err(AppError::invalid(
            "keys.p256dh",
            "keys.p256dh must be an uncompressed P-256 public key (65 bytes, base64url)",
        ));
    }
    let auth = decode("keys.auth", &sub.keys.auth)?;
    if auth.len() != 16 {
        return Err(AppError::invalid(
            "keys.auth",
            "keys.auth must be 16 bytes, base64url",
        ));
    }
    state
        .db()
        .push_subscribe(
            caller,
            NewSubscription {
                endpoint,
                p256dh: URL_SAFE_NO_PAD.encode(p256dh),
                auth: URL_SAFE_NO_PAD.encode(auth),
            },
        )
        .await
}

/// Removes the caller's subscription at `endpoint` (none is fine).
pub async fn unsubscribe(state: &AppState, caller: UserId, endpoint: &str) -> AppResult<()> {
    if endpoint.is_empty() || endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err(AppError::invalid(
            "endpoint",
            format!("endpoint must be 1 to {MAX_ENDPOINT_BYTES} bytes"),
        ));
    }
    state
        .db()
        .push_unsubscribe(caller, endpoint.to_string())
        .await
}

/// base64url, padded or not (browsers give it unpadded).
fn decode(field: &str, value: &str) -> AppResult<Vec<u8>> {
    let value = value.trim();
    URL_SAFE_NO_PAD
        .decode(value)
        .or_else(|_| URL_SAFE.decode(value))
        .map_err(|_| AppError::invalid(field, format!("{field} must be base64url")))
}

/// The endpoint as stored, or 400 naming `endpoint`.
pub fn valid_endpoint(raw: &str, allow_private: bool) -> AppResult<String> {
    let bad = |why: &str| AppError::invalid("endpoint", format!("endpoint {why}"));
    if raw.is_empty() || raw.len() > MAX_ENDPOINT_BYTES {
        return Err(bad(&format!("must be 1 to {MAX_ENDPOINT_BYTES} bytes")));
    }
    let url = reqwest::Url::parse(raw).map_err(|_| bad("must be a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(bad("must be an https:// URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    let host = match url.host() {
        Some(h) => h,
        None => return Err(bad("must name a host")),
    };
    if allow_private {
        return Ok(url.to_string());
    }
    let refused = crate::outbound::refused_host(&host, crate::outbound::Reach::Public);
    if refused {
        return Err(bad("must be on a public address"));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_on_public_addresses() {
        for good in [
            "https://fcm.googleapis.com/fcm/send/abc:def",
            "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
            "https://93.184.216.34/push",
            "https://[2606:4700::1111]/push",
        ] {
            assert!(valid_endpoint(good, false).is_ok(), "{good}");
        }
        for bad in [
            "http://fcm.googleapis.com/x",
            "https://localhost/x",
            "https://app.localhost/x",
            "https://intranet/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.1.10/x",
            "https://172.16.0.1/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://224.0.0.1/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://user:pw@push.example.com/x",
            "ftp://push.example.com/x",
            "not a url",
            "",
        ] {
            assert!(valid_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(valid_endpoint(
            &format!("https://push.example.com/{}", "a".repeat(1100)),
            false
        )
        .is_err());
        // Tests only: a stub push service on 127.0.0.1.
        assert!(valid_endpoint("http://127.0.0.1:9/push", true).is_ok());
    }
}
