//! The first http(s) link of a message, found as the web app's `linkify`
//! finds links (so the preview is for the link the reader sees first).

/// Longest link that gets a preview, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// The first `http://` or `https://` URL in `text` that starts a word,
/// without trailing punctuation, normalised (`url::Url`); `None` if there
/// is none.
pub fn first_url(text: &str) -> Option<String> {
    // ASCII lower-casing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while from < text.len() {
        let rest = &lower[from..];
        let at = match (rest.find("http://"), rest.find("https://")) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        } + from;
        let starts_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let end = text[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
            .map_or(text.len(), |e| at + e);
        let candidate = trim_trailing(&text[at..end]);
        if starts_word && candidate.len() <= MAX_URL_BYTES {
            if let Ok(url) = url::Url::parse(candidate) {
                if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() {
                    return Some(url.to_string());
                }
            }
        }
        from = end.max(at + 1);
    }
    None
}

/// Drops trailing `.,;:!?)]}` unless the run starts with `)` and the link
/// holds a `(` (a Wikipedia-style link), as the web app does.
fn trim_trailing(raw: &str) -> &str {
    let kept = raw.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
    let trail = &raw[kept.len()..];
    if trail.starts_with(')') && raw.contains('(') {
        raw
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_link_is_found_as_the_web_app_links_it() {
        assert_eq!(
            first_url("see https://example.com/a."),
            Some("https://example.com/a".into())
        );
        assert_eq!(
            first_url("HTTP://Example.COM"),
            Some("http://example.com/".into())
        );
        assert_eq!(
            first_url("(https://en.wikipedia.org/wiki/Rust_(language))"),
            Some("https://en.wikipedia.org/wiki/Rust_(language))".into())
        );
        assert_eq!(
            first_url("a http://one.example/x then https://two.example"),
            Some("http://one.example/x".into())
        );
        assert_eq!(first_url("xhttps://example.com"), None);
        assert_eq!(first_url("ftp://example.com mailto:a@b.c"), None);
        assert_eq!(first_url("https:// nothing"), None);
        assert_eq!(first_url("no links here"), None);
        assert_eq!(
            first_url("<https://example.com/q?a=1&b=2>"),
            Some("https://example.com/q?a=1&b=2".into())
        );
        assert_eq!(
            first_url("héllo https://exämple.com/ü"),
            Some("https://xn--exmple-cua.com/%C3%BC".into())
        );
        assert_eq!(
            first_url(&format!("https://example.com/{}", "a".repeat(3000))),
            None
        );
    }
}
