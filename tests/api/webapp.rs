//! The web app's files as the server hands them out: `index.html` and
//! `sw.js` carry the web app's version (a new version makes browsers install
//! the new service worker and offer "New version — reload"), the worker
//! carries the list of files it keeps for offline starts, and every file
//! answers `If-None-Match` with 304.

use std::path::Path;

use reqwest::StatusCode;

use crate::helpers::*;

async fn text(app: &TestApp, path: &str) -> (reqwest::header::HeaderMap, String) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    (r.headers().clone(), r.text().await.unwrap())
}

/// The version written into index.html's `<meta name="natter-version">`.
fn page_version(html: &str) -> String {
    let at = html
        .find(r#"<meta name="natter-version" content=""#)
        .expect("the version meta tag");
    let rest = &html[at + r#"<meta name="natter-version" content=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The version the worker names its cache after (`const VERSION = '…';`).
fn worker_version(sw: &str) -> String {
    let at = sw.find("const VERSION = '").expect("the VERSION line");
    let rest = &sw[at + "const VERSION = '".len()..];
    rest[..rest.find('\'').unwrap()].to_string()
}

fn worker_files(sw: &str) -> Vec<String> {
    let at = sw.find("const FILES = ").expect("the FILES line");
    let rest = &sw[at + "const FILES = ".len()..];
    serde_json::from_str(&rest[..rest.find(";\n").unwrap()]).expect("FILES is a JSON list")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn the_page_and_the_worker_carry_one_version_and_the_worker_lists_the_shell() {
    let app = spawn_app().await;
    let (page_headers, html) = text(&app, "/").await;
    let (sw_headers, sw) = text(&app, "/sw.js").await;
    for h in [&page_headers, &sw_headers] {
        assert_eq!(
            h["cache-control"], "no-cache",
            "seen at once after an upgrade"
        );
    }
    assert!(
        !html.contains("__NATTER_") && !sw.contains("__NATTER_"),
        "every mark replaced"
    );
    let version = page_version(&html);
    assert_eq!(worker_version(&sw), version);
    let (package, digest) = version.rsplit_once('-').unwrap();
    assert_eq!(package, env!("CARGO_PKG_VERSION"));
    assert!(
        digest.len() == 12 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    let files = worker_files(&sw);
    for f in [
        "/",
        "/app.css",
        "/js/main.js",
        "/js/pwa.js",
        "/manifest.webmanifest",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} missing from {files:?}");
    }
    assert!(!files.iter().any(|x| x == "/sw.js" || x == "/index.html"));
    // Every listed file is served (the worker's install fetches them all).
    for f in &files {
        let r = app
            .client
            .get(format!("{}{f}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{f}");
    }
}

#[tokio::test]
async fn a_changed_web_app_has_a_new_version_even_without_a_restart() {
    let assets = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"),
        assets.path(),
    );
    let builtin = spawn_app().await;
    let builtin_version = worker_version(&text(&builtin, "/sw.js").await.1);
    let dir = assets.path().to_path_buf();
    let app = spawn_with(move |a| a.assets_dir = Some(dir)).await;
    let (_, sw) = text(&app, "/sw.js").await;
    assert_eq!(
        worker_version(&sw),
        builtin_version,
        "the same files give the same version"
    );
    let mut css = std::fs::read_to_string(assets.path().join("app.css")).unwrap();
    css.push_str("\n/* customised */\n");
    std::fs::write(assets.path().join("app.css"), css).unwrap();
    let (_, sw) = text(&app, "/sw.js").await;
    let (_, html) = text(&app, "/").await;
    let changed = worker_version(&sw);
    assert_ne!(changed, builtin_version, "an edited file is a new version");
    assert_eq!(page_version(&html), changed);
    // A dotfile (an editor's swap file, say) is neither a version nor in the list.
    std::fs::write(assets.path().join(".app.css.swp"), "x").unwrap();
    let (_, again) = text(&app, "/sw.js").await;
    assert_eq!(worker_version(&again), changed);
    assert!(!worker_files(&again).iter().any(|f| f.contains(".swp")));
}

#[tokio::test]
async fn files_answer_if_none_match_with_304() {
    let app = spawn_app().await;
    for path in ["/app.css", "/", "/sw.js", "/icons/icon-192.png"] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
        let body = r.bytes().await.unwrap();
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert!(r.headers().contains_key("cache-control"));
        assert!(r.bytes().await.unwrap().is_empty());
        // Another tag (an older version's) gets the file.
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .header(
                "If-None-Match",
                "\"0123456789abcdef0123456789abcdef\", W/\"x\"",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.bytes().await.unwrap(), body);
    }
}
