//! Link previews: after a TEXT or LINK message is stored, the server that
//! stored it (only that node: the others get the message over the bus and
//! fetch nothing) fetches the page behind its first http(s) link, reads its
//! title, description, site name and image, re-encodes the image into a
//! small JPEG thumbnail stored like an upload (so clients never load a
//! third-party URL: no tracking pixel reaches them), attaches
//! `linkPreview` to the message and announces it with `message:updated`
//! (an events row, so `/sync` replays it). The send never waits for any of
//! this.
//!
//! Bounded work: at most [`QUEUE_LEN`] previews wait and [`CONCURRENCY`]
//! fetch at once (a burst beyond that gets no previews); each fetch follows
//! the SSRF rules of [`fetch`] and [`crate::outbound`] and ends within
//! [`fetch::TIMEOUT`]; the image is decoded under the same limits as
//! uploads (`files::make_preview`: header-checked dimensions, the shared
//! decode budget).
//!
//! Edits: a message edited to a different first link loses its preview in
//! the edit's transaction and the new link is fetched; an edit that keeps
//! the link keeps the preview (and retries one that failed). A preview that
//! arrives after its message was edited to another link, deleted, or
//! already previewed is dropped. A message stored while the server stopped
//! before fetching gets no preview.

pub mod fetch;
pub mod html;
pub mod links;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::db::uploads::NewUpload;
use crate::model::{LinkPreview, Message, MessageId};
use crate::outbound::Reach;
use crate::realtime::frames::MESSAGE_UPDATED;
use crate::state::{AppState, WeakState};
use fetch::{Refused, Want};

pub use links::first_url;

/// Previews waiting or running at most; more are skipped (logged).
pub const QUEUE_LEN: usize = 256;
/// Previews fetched at once.
pub const CONCURRENCY: usize = 4;

/// `--link-previews`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Setting {
    /// Fetch a preview of the first link of each message.
    On,
    /// Never fetch anything.
    Off,
}

/// The preview queue of one app.
pub struct Previewer {
    enabled: bool,
    reach: Reach,
    waiting: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl Previewer {
    /// A previewer for `--link-previews` (`enabled`) and the test-only
    /// `--link-preview-allow-private` (`allow_loopback`).
    pub fn new(enabled: bool, allow_loopback: bool) -> Previewer {
        Previewer {
            enabled,
            reach: if allow_loopback {
                Reach::AlsoLoopback
            } else {
                Reach::Public
            },
            waiting: Arc::new(Semaphore::new(QUEUE_LEN)),
            running: Arc::new(Semaphore::new(CONCURRENCY)),
        }
    }
}

/// After a new message committed: queues its first link's preview.
pub fn message_stored(state: &AppState, message: &Message) {
    let previewer = state.previews();
    if !previewer.enabled || !matches!(message.message_type.as_str(), "TEXT" | "LINK") {
        return;
    }
    let Some(url) = message.content.as_deref().and_then(first_url) else {
        return;
    };
    let Ok(slot) = previewer.waiting.clone().try_acquire_owned() else {
        tracing::warn!("link previews: queue full, a preview was skipped");
        state.metrics().link_preview("skipped");
        return;
    };
    let (running, reach, weak, id) = (
        previewer.running.clone(),
        previewer.reach,
        state.downgrade(),
        message.id,
    );
    tokio::spawn(async move {
        let _slot = slot;
        let Ok(_permit) = running.acquire_owned().await else {
            return;
        };
        let outcome = preview(&weak, id, url, reach).await;
        if let Some(state) = weak.upgrade() {
            state.metrics().link_preview(outcome);
        }
        tracing::debug!(message.id = id.0, outcome, "link preview");
    });
}

/// After an edit committed: a message whose preview the edit removed (a
/// new first link) or that never had one gets one for its current link.
pub fn message_edited(state: &AppState, message: &Message) {
    if message.link_preview.is_none() {
        message_stored(state, message);
    }
}

/// Fetches, stores and announces one preview; returns the outcome's word.
async fn preview(weak: &WeakState, id: MessageId, url: String, reach: Reach) -> &'static str {
    let Ok(link) = reqwest::Url::parse(&url) else {
        return "refused_address";
    };
    let deadline = Instant::now() + fetch::TIMEOUT;
    let page = match fetch::fetch(&link, Want::Page, reach, deadline).await {
        Ok(p) => p,
        Err(e) => return refused_word(e),
    };
    let meta = html::parse(&html::decode(&page.body, &page.content_type));
    if meta.title.is_none() && meta.description.is_none() {
        return "empty";
    }
    let site_name = meta.site_name.or_else(|| {
        page.url
            .host_str()
            .map(|h| h.trim_start_matches("www.").to_string())
    });
    let image_link = meta
        .image
        .and_then(|i| page.url.join(&i).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let Some(state) = weak.upgrade() else {
        return "stopped";
    };
    let thumbnail = match image_link {
        Some(image) => thumbnail(&state, &image, reach, deadline).await,
        None => None,
    };
    let preview = LinkPreview {
        url: url.clone(),
        title: meta.title,
        description: meta.description,
        site_name,
        image_url: thumbnail
            .as_ref()
            .map(|u| format!("{}{}", crate::db::messages::UPLOADS_PREFIX, u.name)),
    };
    let name = thumbnail.as_ref().map(|u| u.name.clone());
    match state
        .db()
        .fill_link_preview(id, url, preview, thumbnail)
        .await
    {
        Ok(Some((message, members))) => {
            crate::ops::publish(&state, MESSAGE_UPDATED, &message, &members);
            "stored"
        }
        Ok(None) => {
            drop_thumbnail(&state, name).await;
            "stale"
        }
        Err(e) => {
            e.log();
            drop_thumbnail(&state, name).await;
            "failed"
        }
    }
}

fn refused_word(e: Refused) -> &'static str {
    match e {
        Refused::Address => "refused_address",
        Refused::Port => "refused_port",
        Refused::Redirects => "refused_redirects",
        Refused::Content => "refused_content",
        Refused::Failed => "failed",
    }
}

/// Fetches the page's image and stores a JPEG thumbnail of it (longest side
/// `files::THUMB_SIZE`) in the upload store; `None` when any step fails
/// (the preview then has no image).
async fn thumbnail(
    state: &AppState,
    image: &reqwest::Url,
    reach: Reach,
    deadline: Instant,
) -> Option<NewUpload> {
    let fetched = fetch::fetch(image, Want::Image, reach, deadline)
        .await
        .ok()?;
    let kind = infer::get(&fetched.body)?.mime_type();
    if !matches!(
        kind,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    ) {
        return None;
    }
    let tmp = crate::files::tmp_dir(state);
    tokio::fs::create_dir_all(&tmp).await.ok()?;
    let src = tmp.join(format!("{}.part", crate::files::random_hex(16)));
    tokio::fs::write(&src, &fetched.body).await.ok()?;
    drop(fetched);
    let name = format!("{}.jpg", crate::files::random_hex(16));
    let dir = crate::files::chat_dir(state);
    let thumb = dir.join(&name);
    let made = crate::files::make_preview(state, src.clone(), thumb.clone()).await;
    let _ = tokio::fs::remove_file(&src).await;
    if !matches!(made, Ok(Some((_, _, true)))) {
        let _ = tokio::fs::remove_file(&thumb).await;
        return None;
    }
    let bytes = tokio::fs::read(&thumb).await.ok()?;
    let (width, height) = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()?;
    let upload = NewUpload {
        name: name.clone(),
        // Set to the message's sender when it is recorded.
        uploader_id: crate::model::UserId(0),
        file_name: "link-preview.jpg".to_string(),
        file_size: i64::try_from(bytes.len()).ok()?,
        mime_type: "image/jpeg".to_string(),
        sha256: format!("{:x}", Sha256::digest(&bytes)),
        width: Some(i64::from(width)),
        height: Some(i64::from(height)),
        thumb_name: None,
    };
    if state
        .objects()
        .publish(&dir, &[name.as_str()])
        .await
        .is_err()
    {
        let _ = tokio::fs::remove_file(&thumb).await;
        return None;
    }
    Some(upload)
}

/// Removes a stored thumbnail nobody will reference.
async fn drop_thumbnail(state: &AppState, name: Option<String>) {
    let Some(name) = name else { return };
    if state.objects().is_remote() {
        state.objects().delete(&name).await;
    } else {
        let _ = tokio::fs::remove_file(crate::files::chat_dir(state).join(&name)).await;
    }
}
