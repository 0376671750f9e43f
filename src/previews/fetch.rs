//! One guarded GET for a link preview: the page, or its image.
//!
//! Every hop (the link, then at most [`MAX_REDIRECTS`] redirects) must be
//! `http(s)://` without credentials on port 80 or 443 and is resolved once
//! and checked by [`crate::outbound`] (public addresses only, connecting to
//! the checked address); the whole fetch, redirects and body included, ends
//! at one deadline; the body is read in chunks and never past its cap; the
//! `Content-Type` must be the one asked for. Cookies are never sent or
//! kept. Failures say why in a word, never the URL (links are message
//! content and stay out of the logs).

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, USER_AGENT};
use reqwest::Url;
use tokio::time::Instant;

use crate::outbound::{self, Reach};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;
/// The whole fetch of a page and its image.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of a page read at most; the rest is never read.
pub const MAX_PAGE_BYTES: usize = 512 * 1024;
/// Bytes of an image at most; a bigger one is dropped.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// What to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `text/html`, the first [`MAX_PAGE_BYTES`] of it.
    Page,
    /// `image/*`, at most [`MAX_IMAGE_BYTES`].
    Image,
}

/// A fetched body.
#[derive(Debug)]
pub struct Fetched {
    /// Where it came from after redirects (relative links resolve here).
    pub url: Url,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Why nothing came back (logged as the word, counted in `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A hop's address, scheme or credentials broke the rules.
    Address,
    /// A hop's port is neither 80 nor 443.
    Port,
    /// More than [`MAX_REDIRECTS`] redirects, or a bad `Location`.
    Redirects,
    /// Not the type asked for, or an image over its cap.
    Content,
    /// No answer, an error status, or the deadline.
    Failed,
}

impl Refused {
    /// The word for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Address => "address",
            Refused::Port => "port",
            Refused::Redirects => "redirects",
            Refused::Content => "content",
            Refused::Failed => "failed",
        }
    }
}

/// Whether a hop may be fetched at all (before any lookup): http(s), no
/// credentials.
fn allowed_hop(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
}

/// Port 80 or 443 (any port with the test-only reach). Checked after the
/// address, so each rule is seen failing on its own (`/metrics`).
fn allowed_port(url: &Url, reach: Reach) -> bool {
    match url.port_or_known_default() {
        Some(80 | 443) => true,
        Some(_) => reach != Reach::Public,
        None => false,
    }
}

/// GETs `start` under the rules above, by `deadline`.
pub async fn fetch(
    start: &Url,
    want: Want,
    reach: Reach,
    deadline: Instant,
) -> Result<Fetched, Refused> {
    let mut url = start.clone();
    for _hop in 0..=MAX_REDIRECTS {
        if !allowed_hop(&url) {
            return Err(Refused::Address);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Refused::Failed);
        }
        // The lookup counts against the deadline too.
        let client =
            match tokio::time::timeout_at(deadline, outbound::pinned_client(&url, reach, left))
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(_)) => return Err(Refused::Address),
                Err(_) => return Err(Refused::Failed),
            };
        if !allowed_port(&url, reach) {
            return Err(Refused::Port);
        }
        let accept = match want {
            Want::Page => "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            Want::Image => "image/png,image/jpeg,image/gif,image/webp,image/*;q=0.8",
        };
        let sent = client
            .get(url.clone())
            .header(ACCEPT, accept)
            .header(
                USER_AGENT,
                "natter-link-preview/1 (+https://github.com/natter)",
            )
            .send();
        let response = match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(r)) => r,
            _ => return Err(Refused::Failed),
        };
        let status = response.status();
        if status.is_redirection() {
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| url.join(loc).ok())
                .ok_or(Refused::Redirects)?;
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(Refused::Failed);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let (type_ok, cap) = match want {
            Want::Page => (essence == "text/html", MAX_PAGE_BYTES),
            Want::Image => (essence.starts_with("image/"), MAX_IMAGE_BYTES),
        };
        if !type_ok {
            return Err(Refused::Content);
        }
        if want == Want::Image && response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(Refused::Content);
        }
        let body = read_capped(response, cap, want == Want::Page, deadline).await?;
        return Ok(Fetched {
            url,
            content_type,
            body,
        });
    }
    Err(Refused::Redirects)
}

/// Reads at most `cap` bytes: a page is cut there (`cut_ok`), an image over
/// it is refused. Dropping the response closes the connection, so the rest
/// is never read.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    cut_ok: bool,
    deadline: Instant,
) -> Result<Vec<u8>, Refused> {
    let mut body = Vec::new();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => return Ok(body),
            // A page cut short by the deadline still has its head.
            Err(_) if cut_ok && !body.is_empty() => return Ok(body),
            _ => return Err(Refused::Failed),
        };
        if body.len() + chunk.len() > cap {
            if !cut_ok {
                return Err(Refused::Content);
            }
            let room = cap - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Ok(body);
        }
        body.extend_from_slice(&chunk);
        if cut_ok && body.len() == cap {
            return Ok(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_on_web_ports_without_credentials() {
        let ok = |s: &str, reach| {
            let url = Url::parse(s).unwrap();
            allowed_hop(&url) && allowed_port(&url, reach)
        };
        assert!(ok("https://example.com/a", Reach::Public));
        assert!(ok("http://example.com:80/a", Reach::Public));
        assert!(!ok("http://example.com:8080/a", Reach::Public));
        assert!(!ok("https://example.com:22/", Reach::Public));
        assert!(!ok("https://user:pw@example.com/", Reach::Public));
        assert!(!ok("ftp://example.com/", Reach::Public));
        assert!(!ok("file:///etc/passwd", Reach::Public));
        assert!(ok("http://127.0.0.1:8080/a", Reach::AlsoLoopback));
    }
}
