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
//! Sending (RFC 8030, payloads encrypted per RFC 8291 `aes128gcm`, signed
//! per RFC 8292, with the crate `web-push-native`): after a `message:new`
//! commits, every member but the sender who has no open socket on any node,
//! is still a member, is not disabled and has not muted the chat gets one
//! push per subscribed device, through a bounded queue ([`QUEUE_LEN`]) and at
//! most [`CONCURRENCY`] requests at a time, each with a [`TIMEOUT`]: a slow
//! or dead push service never delays a send. 404/410 forgets the
//! subscription; 429/5xx are retried ([`ATTEMPTS`] in all) after
//! `Retry-After` or a doubling pause. The endpoint's host is resolved when
//! sending and the connection goes to that checked address only (no second
//! lookup), no redirects followed. With several nodes, a socket that closes
//! on another node stops counting at once: that node says so on the bus
//! before its 2 s presence grace (`Bus::local_sockets`), so a message in
//! those 2 s is pushed, while the person still shows online.
//!
//! The browser side is the web app's service worker (`assets/sw.js`: one
//! notification per chat, none while the app is in view) and
//! `assets/js/notify.js` (the prompt, subscribing, unsubscribing on sign-out).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;

/// Pushes waiting to be sent; past it new ones are dropped (logged).
pub const QUEUE_LEN: usize = 10_000;
/// Push requests in flight at once.
pub const CONCURRENCY: usize = 16;
/// Longest wait for one push service answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Tries per push (429 and 5xx are tried again).
pub const ATTEMPTS: u32 = 3;
/// How long a push service keeps an undelivered push (`TTL`).
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest message preview in a push, in characters (payload ≤ 3 KB).
pub const PREVIEW_CHARS: usize = 500;

/// `--push-preview`: how much of a message a push carries (push services
/// see only ciphertext; the device shows this on a locked screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preview {
    /// Sender, chat and the text.
    Full,
    /// Sender and chat, "New message" for the text.
    Sender,
    /// Only "New message".
    None,
}

/// One push to one device.
struct Job {
    endpoint: String,
    p256dh: String,
    auth: String,
    payload: Vec<u8>,
    /// One per chat: the push service keeps only the newest per topic.
    topic: String,
    urgency: &'static str,
}

/// The sending side: a queue and its workers.
#[derive(Clone)]
pub struct Pusher {
    tx: tokio::sync::mpsc::Sender<Job>,
}

impl Pusher {
    /// Starts the workers (they end with the app).
    pub fn start(
        state: crate::state::WeakState,
        key: &VapidKey,
        subject: String,
        allow_private: bool,
    ) -> Pusher {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(QUEUE_LEN);
        let signer = web_push_native::jwt_simple::algorithms::ES256KeyPair::from_bytes(
            &key.secret.to_bytes(),
        )
        .expect("a P-256 scalar is an ES256 key");
        let signer = Arc::new(signer);
        let subject = Arc::new(subject);
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (signer, subject, state) = (signer.clone(), subject.clone(), state.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Some(gone) = deliver(&job, &signer, &subject, allow_private).await {
                        if let Some(state) = state.upgrade() {
                            tracing::info!(reason = gone, "push: subscription gone, removed");
                            if let Err(e) = state.db().push_gone(job.endpoint).await {
                                e.log();
                            }
                        }
                    }
                });
            }
        });
        Pusher { tx }
    }

    /// After `message` (new, committed) in `chat`: pushes to members
    /// without an open socket. Returns at once; the work runs in the
    /// background.
    pub fn message_sent(
        &self,
        state: &crate::state::AppState,
        message: &crate::model::Message,
        members: &[crate::model::UserId],
    ) {
        if message.message_type == "SYSTEM" {
            return;
        }
        let away = state.hub().without_socket(members, message.sender_id);
        if away.is_empty() {
            return;
        }
        let (state, tx) = (state.clone(), self.tx.clone());
        let (chat, sender) = (message.chat_id, message.sender_id);
        let text = preview_text(message);
        let message_id = message.id;
        tokio::spawn(async move {
            let (names, targets) = match state.db().push_targets(chat, sender, away).await {
                Ok(t) => t,
                Err(e) => {
                    e.log();
                    return;
                }
            };
            let preview = state.config().push_preview;
            let chat_name = names
                .chat_name
                .clone()
                .unwrap_or_else(|| names.sender_name.clone());
            for t in targets {
                let payload = match preview {
                    Preview::Full => serde_json::json!({
                        "chatId": chat, "chatName": chat_name, "senderName": names.sender_name,
                        "body": text, "count": t.unread, "messageId": message_id, "isGroup": names.is_group,
                    }),
                    Preview::Sender => serde_json::json!({
                        "chatId": chat, "chatName": chat_name, "senderName": names.sender_name,
                        "body": "New message", "count": t.unread, "messageId": message_id, "isGroup": names.is_group,
                    }),
                    Preview::None => serde_json::json!({
                        "chatId": chat, "chatName": "", "senderName": "",
                        "body": "New message", "count": t.unread, "messageId": message_id,
                    }),
                };
                let mut payload = payload;
                // One notification per chat: a new one replaces the last
                // ("3 new messages" from `count`).
                payload["tag"] = serde_json::json!(format!("chat-{}", chat.0));
                let job = Job {
                    endpoint: t.endpoint,
                    p256dh: t.p256dh,
                    auth: t.auth,
                    payload: payload.to_string().into_bytes(),
                    topic: format!("chat-{}", chat.0),
                    urgency: if names.is_group { "normal" } else { "high" },
                };
                if tx.try_send(job).is_err() {
                    tracing::warn!("push: queue full, a push was dropped");
                }
            }
        });
    }
}

/// The text a notification shows for `message`.
fn preview_text(message: &crate::model::Message) -> String {
    let text = message.content.as_deref().unwrap_or("").trim();
    if !text.is_empty() {
        return text.chars().take(PREVIEW_CHARS).collect();
    }
    match message.message_type.as_str() {
        "IMAGE" => "📷 Photo".to_string(),
        _ => match &message.file_name {
            Some(name) => format!("📎 {}", name.chars().take(100).collect::<String>()),
            None => "New message".to_string(),
        },
    }
}

/// Sends one push, retrying 429/5xx; `Some(reason)` when the push service
/// says the subscription is gone.
async fn deliver(
    job: &Job,
    signer: &web_push_native::jwt_simple::algorithms::ES256KeyPair,
    subject: &str,
    allow_private: bool,
) -> Option<&'static str> {
    let request = match build(job, signer, subject) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "push: cannot build a push (bad subscription)");
            return Some("unusable keys");
        }
    };
    let client = match pinned_client(&job.endpoint, allow_private).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "push: endpoint refused");
            return None;
        }
    };
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let mut req = client.post(&job.endpoint);
        for (name, value) in request.headers() {
            req = req.header(name, value);
        }
        let sent = req
            .header("Urgency", job.urgency)
            .header("Topic", &job.topic)
            .body(request.body().clone())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "push: the push service did not answer");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                continue;
            }
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => return None,
            404 | 410 => return Some("404/410 from the push service"),
            429 | 500..=599 => {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(60)))
                    .unwrap_or(pause);
                tracing::warn!(attempt, status, "push: the push service asks to retry");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    pause *= 2;
                }
            }
            _ => {
                tracing::warn!(status, "push: the push service refused a push");
                return None;
            }
        }
    }
    None
}

/// The encrypted request for `job` (RFC 8291), with its VAPID
/// `Authorization` (RFC 8292). The JWT is signed here rather than by
/// web-push-native, whose `aud` leaves out a non-default port: `aud` is the
/// endpoint's origin, and `exp` 12 h ahead (push services refuse more than
/// 24 h).
fn build(
    job: &Job,
    signer: &web_push_native::jwt_simple::algorithms::ES256KeyPair,
    subject: &str,
) -> anyhow::Result<http::Request<Vec<u8>>> {
    use web_push_native::jwt_simple::prelude::{
        Claims, ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike,
    };
    let uri: http::Uri = job.endpoint.parse()?;
    let origin = reqwest::Url::parse(&job.endpoint)?
        .origin()
        .ascii_serialization();
    let ua_public = p256::PublicKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(&job.p256dh)?)?;
    let auth = URL_SAFE_NO_PAD.decode(&job.auth)?;
    anyhow::ensure!(auth.len() == 16, "auth is not 16 bytes");
    #[allow(deprecated)] // web-push-native's `Auth` is a generic-array 0.14 array
    let auth = web_push_native::Auth::clone_from_slice(&auth);
    let mut request = web_push_native::WebPushBuilder::new(uri, ua_public, auth)
        .with_valid_duration(TTL)
        .build(job.payload.clone())?;
    let claims = Claims::create(web_push_native::jwt_simple::prelude::Duration::from_hours(
        12,
    ))
    .with_audience(origin)
    .with_subject(subject);
    let token = signer
        .sign(claims)
        .map_err(|e| anyhow::anyhow!("VAPID signature: {e}"))?;
    let public = URL_SAFE_NO_PAD.encode(signer.public_key().public_key().to_bytes_uncompressed());
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("vapid t={token}, k={public}"))?,
    );
    Ok(request)
}

/// A client that connects to the endpoint's host at one resolved address,
/// checked public (unless `--push-allow-private`), with no redirects: the
/// shared rules of [`crate::outbound`].
async fn pinned_client(endpoint: &str, allow_private: bool) -> anyhow::Result<reqwest::Client> {
    let url = reqwest::Url::parse(endpoint)?;
    let reach = if allow_private {
        crate::outbound::Reach::Anything
    } else {
        crate::outbound::Reach::Public
    };
    crate::outbound::pinned_client(&url, reach, TIMEOUT).await
}

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
