//! What a page says about itself: Open Graph and Twitter card `<meta>`
//! tags, the description meta and `<title>`, read with a real HTML parser
//! (`scraper`, on html5ever), never with patterns. Everything comes out as
//! plain text: entities decoded by the parser, control, bidi and invisible
//! characters dropped, whitespace collapsed, length capped.

use std::collections::HashMap;
use std::sync::LazyLock;

use scraper::{Html, Selector};

/// Longest title, in characters.
pub const TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const DESCRIPTION_CHARS: usize = 300;
/// Longest site name, in characters.
pub const SITE_NAME_CHARS: usize = 100;

/// The preview fields of a page; `image` is the image link as written
/// (resolved against the page by the caller).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub title: Option<String>,
    pub description: Option<String>,
    pub site_name: Option<String>,
    pub image: Option<String>,
}

static META: LazyLock<Selector> = LazyLock::new(|| Selector::parse("meta").expect("selector"));
static TITLE: LazyLock<Selector> = LazyLock::new(|| Selector::parse("title").expect("selector"));

/// Reads the preview fields of an HTML document.
pub fn parse(html: &str) -> Meta {
    let doc = Html::parse_document(html);
    // The first value of each property or name wins, as crawlers do.
    let mut tags: HashMap<String, String> = HashMap::new();
    for el in doc.select(&META) {
        let el = el.value();
        let Some(key) = el.attr("property").or_else(|| el.attr("name")) else {
            continue;
        };
        let Some(content) = el.attr("content") else {
            continue;
        };
        tags.entry(key.trim().to_ascii_lowercase())
            .or_insert_with(|| content.to_string());
    }
    let pick = |keys: &[&str], cap: usize| {
        keys.iter()
            .filter_map(|k| tags.get(*k))
            .find_map(|v| plain_text(v, cap))
    };
    let title = pick(&["og:title", "twitter:title"], TITLE_CHARS).or_else(|| {
        doc.select(&TITLE)
            .next()
            .and_then(|t| plain_text(&t.text().collect::<String>(), TITLE_CHARS))
    });
    let image = [
        "og:image:secure_url",
        "og:image",
        "og:image:url",
        "twitter:image",
        "twitter:image:src",
    ]
    .iter()
    .filter_map(|k| tags.get(*k))
    .map(|v| v.trim())
    .find(|v| !v.is_empty() && v.len() <= super::links::MAX_URL_BYTES)
    .map(str::to_string);
    Meta {
        title,
        description: pick(
            &["og:description", "twitter:description", "description"],
            DESCRIPTION_CHARS,
        ),
        site_name: pick(&["og:site_name", "application-name"], SITE_NAME_CHARS),
        image,
    }
}

/// `raw` as one line of plain text of at most `cap` characters (an
/// ellipsis marks a cut); `None` when nothing is left.
pub fn plain_text(raw: &str, cap: usize) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || invisible(c) {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if out.is_empty() {
        return None;
    }
    if out.chars().count() > cap {
        let cut: String = out.chars().take(cap.saturating_sub(1)).collect();
        return Some(format!("{}…", cut.trim_end()));
    }
    Some(out)
}

/// Bidi embeddings, overrides and isolates, zero-width and other invisible
/// format characters: they could make a title lie about what follows it.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The character set a page declares: its `Content-Type`'s `charset=`, else
/// a `charset=` in its first 2 KiB (`<meta charset>` or the http-equiv
/// form); UTF-8 when neither says or the label is unknown.
pub fn decode(body: &[u8], content_type: &str) -> String {
    let label =
        charset_in(content_type.as_bytes()).or_else(|| charset_in(&body[..body.len().min(2048)]));
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(&l))
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode(body).0.into_owned()
}

fn charset_in(bytes: &[u8]) -> Option<Vec<u8>> {
    let lower = bytes.to_ascii_lowercase();
    let at = lower.windows(8).position(|w| w == b"charset=")? + 8;
    let label: Vec<u8> = lower[at..]
        .iter()
        .skip_while(|b| **b == b'"' || **b == b'\'')
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        .copied()
        .collect();
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_graph_wins_over_title_and_text_comes_out_plain() {
        let meta = parse(
            r#"<!doctype html><html><head><title>Plain &amp; title</title>
            <meta property="og:title" content="  The &lt;b&gt;real&lt;/b&gt;
               title&#x202E;  ">
            <meta property="og:title" content="second">
            <meta name="description" content="A page.">
            <meta property="og:site_name" content="Example">
            <meta property="og:image" content="/img/card.png">
            </head><body><script>document.title = "no"</script></body></html>"#,
        );
        assert_eq!(
            meta,
            Meta {
                title: Some("The <b>real</b> title".into()),
                description: Some("A page.".into()),
                site_name: Some("Example".into()),
                image: Some("/img/card.png".into()),
            }
        );
        let meta = parse("<title>\n  Just a\ttitle </title><p>body");
        assert_eq!(meta.title.as_deref(), Some("Just a title"));
        assert_eq!(meta.description, None);
        assert_eq!(parse("not html at all").title, None);
    }

    #[test]
    fn long_text_is_capped() {
        let long = "word ".repeat(200);
        let t = plain_text(&long, TITLE_CHARS).unwrap();
        assert_eq!(t.chars().count(), TITLE_CHARS.min(t.chars().count()));
        assert!(t.chars().count() <= TITLE_CHARS && t.ends_with('…'));
        assert_eq!(plain_text(" \u{200B}\u{202E} ", 10), None);
    }

    #[test]
    fn the_declared_charset_is_used() {
        let latin1 = b"<title>caf\xe9</title>";
        assert_eq!(
            decode(latin1, "text/html; charset=ISO-8859-1"),
            "<title>café</title>"
        );
        let meta = b"<meta charset=\"windows-1252\"><title>\x93hi\x94</title>";
        assert!(decode(meta, "text/html").contains("\u{201c}hi\u{201d}"));
        assert_eq!(
            decode("<title>é</title>".as_bytes(), "text/html"),
            "<title>é</title>"
        );
    }
}
