//! Uploads, private downloads, previews, traversal, retention.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) async fn upload(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    upload_part(app, user, Part::bytes(bytes).file_name(name.to_string())).await
}

async fn fetch(app: &TestApp, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{}", app.base, url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn stored_files(app: &TestApp) -> Vec<String> {
    let mut names = Vec::new();
    for dir in ["uploads/chat", "uploads/tmp"] {
        if let Ok(entries) = std::fs::read_dir(app.dir.path().join(dir)) {
            names.extend(entries.map(|e| e.unwrap().file_name().to_string_lossy().to_string()));
        }
    }
    names
}

#[tokio::test]
async fn upload_limit_is_exact_and_leaves_nothing_behind() {
    if is_cluster() {
        return; // looks at files on this node's disk; the cluster keeps them in S3 (s3.rs covers the cap there)
    }
    let app = spawn_with(|a| a.upload_max_size = 10_000).await;
    let alice = app.register("Alice").await;
    let (status, body) = upload(&app, &alice, "exact.bin", vec![7u8; 10_000]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["fileSize"], 10_000);
    assert_eq!(stored_files(&app).len(), 1);
    let (status, body) = upload(&app, &alice, "over.bin", vec![7u8; 10_001]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let (status, _) = upload(&app, &alice, "way-over.bin", vec![7u8; 200_000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        stored_files(&app).len(),
        1,
        "nothing kept: {:?}",
        stored_files(&app)
    );
    // no file field, no auth
    let resp = app
        .client
        .post(format!("{}/chat/upload", app.base))
        .bearer_auth(&alice.token)
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app
        .client
        .post(format!("{}/chat/upload", app.base))
        .multipart(Form::new().part("file", Part::bytes(vec![1, 2, 3]).file_name("a")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn downloads_are_private_and_support_ranges() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let content: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let (status, up) = upload(&app, &alice, "report.pdf.txt", content.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    let url = up["fileUrl"].as_str().unwrap().to_string();
    assert!(url.starts_with("/uploads/chat/"));
    assert_eq!(up["fileName"], "report.pdf.txt");
    assert_eq!(up["fileMimeType"], "text/plain");

    // before it is sent, only the uploader can read it
    assert_eq!(
        fetch(&app, &url, Some(&alice.token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        fetch(&app, &url, Some(&bob.token)).await.status(),
        StatusCode::NOT_FOUND
    );

    let (status, msg) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &alice,
            json!({"messageType": "FILE", "fileUrl": url, "fileName": "report.pdf.txt"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    assert_eq!(msg["fileSize"], 5000);
    assert_eq!(msg["fileMimeType"], "text/plain");

    let resp = fetch(&app, &url, Some(&bob.token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.headers()["content-length"], "5000");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.headers().contains_key("etag"));
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), content);

    // the browser cookie works too
    let resp = app
        .client
        .get(format!("{}{}", app.base, url))
        .header("Cookie", format!("natter_token={}", bob.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Range → 206 with the right slice; ETag → 304
    let resp = app
        .client
        .get(format!("{}{}", app.base, url))
        .bearer_auth(&bob.token)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 100-199/5000");
    assert_eq!(
        resp.bytes().await.unwrap().to_vec(),
        content[100..200].to_vec()
    );
    let resp = app
        .client
        .get(format!("{}{}", app.base, url))
        .bearer_auth(&bob.token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    // an unrelated user, no auth, a bad token: 404
    assert_eq!(
        fetch(&app, &url, Some(&eve.token)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &url, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &url, Some("garbage")).await.status(),
        StatusCode::NOT_FOUND
    );

    // IMAGE/FILE with someone else's upload is refused
    let (status, body) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &bob,
            json!({"messageType": "FILE", "fileUrl": url}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &alice,
            json!({"messageType": "IMAGE", "fileUrl": url}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a text file is not an IMAGE"
    );
    let eve_chat = app.direct_chat(&eve, &bob).await;
    let (status, _) = app
        .post(
            &format!("/chat/{eve_chat}/messages"),
            &eve,
            json!({"messageType": "FILE", "fileUrl": url}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "eve can't re-share alice's file into her own chat"
    );

    // deleting the message takes the file away from bob
    let id = msg["id"].as_i64().unwrap();
    app.delete(&format!("/chat/{chat}/messages/{id}"), &alice)
        .await;
    assert_eq!(
        fetch(&app, &url, Some(&bob.token)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn traversal_never_returns_a_file() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    upload(&app, &alice, "a.txt", b"hello".to_vec()).await;
    let attempts = [
        "/uploads/chat/../../natter.db",
        "/uploads/chat/..%2f..%2fnatter.db",
        "/uploads/chat/%2e%2e%2f%2e%2e%2fjwt-secret",
        "/uploads/chat/%2e%2e/%2e%2e/jwt-secret",
        "/uploads/chat/..%5c..%5cnatter.db",
        "/uploads/chat/%2Fetc%2Fpasswd",
        "/uploads/chat//etc/passwd",
        "/uploads/../natter.db",
        "/uploads/chat/....%2f....%2fjwt-secret",
        "/uploads/tmp/x.part",
        "/uploads/chat/.",
        "/uploads/chat/%00",
    ];
    let secret = app.jwt_secret().await;
    for path in attempts {
        let resp = app
            .client
            .get(format!("{}{}", app.base, path))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        assert!(status.is_client_error(), "{path} → {status}");
        assert!(
            !body.starts_with(b"SQLite format"),
            "{path} leaked the database"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains(secret.trim()),
            "{path} leaked the secret"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("root:"),
            "{path} leaked /etc/passwd"
        );
    }
}

#[tokio::test]
async fn active_content_is_served_as_a_sandboxed_attachment() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let cases = [
        (
            "evil.html",
            b"<html><script>alert(1)</script></html>".to_vec(),
        ),
        (
            "evil.svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
        ),
        ("evil.xml", b"<?xml version=\"1.0\"?><x/>".to_vec()),
        ("evil.js", b"alert(1)".to_vec()),
        ("mystery", vec![0u8, 1, 2, 3, 250]),
    ];
    for (name, bytes) in cases {
        let (status, up) = upload(&app, &alice, name, bytes).await;
        assert_eq!(status, StatusCode::CREATED);
        let resp = fetch(&app, up["fileUrl"].as_str().unwrap(), Some(&alice.token)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
            "{name}: {h:?}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox"),
            "{name}"
        );
        assert_ne!(h["content-type"], "text/html");
        assert_ne!(h["content-type"], "image/svg+xml");
        assert!(
            !up["fileUrl"].as_str().unwrap().ends_with(".html"),
            "stored names never keep risky extensions"
        );
    }
}

#[tokio::test]
async fn images_get_dimensions_and_previews() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    for (name, format, w, h) in [
        ("wide.png", image::ImageFormat::Png, 800u32, 400u32),
        ("tall.jpg", image::ImageFormat::Jpeg, 300, 900),
        ("small.png", image::ImageFormat::Png, 100, 50),
    ] {
        let (status, up) = upload(&app, &alice, name, image_bytes(w, h, format)).await;
        assert_eq!(status, StatusCode::CREATED, "{up}");
        assert!(up["fileMimeType"].as_str().unwrap().starts_with("image/"));
        assert_eq!(
            (up["width"].as_i64(), up["height"].as_i64()),
            (Some(w as i64), Some(h as i64))
        );
        let (status, msg) = app
            .post(
                &format!("/chat/{chat}/messages"),
                &alice,
                json!({"messageType": "IMAGE", "fileUrl": up["fileUrl"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{msg}");
        assert_eq!(
            (msg["width"].as_i64(), msg["height"].as_i64()),
            (Some(w as i64), Some(h as i64))
        );
        let thumb = msg["thumbnailUrl"]
            .as_str()
            .expect("thumbnailUrl")
            .to_string();
        let resp = fetch(&app, &thumb, Some(&bob.token)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        let preview = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
        let expected_long = w.max(h).min(320);
        assert_eq!(
            preview.width().max(preview.height()),
            expected_long,
            "{name}"
        );
        let ratio_in = w as f64 / h as f64;
        let ratio_out = preview.width() as f64 / preview.height() as f64;
        assert!(
            (ratio_in - ratio_out).abs() < 0.05,
            "{name} keeps its aspect ratio"
        );
        assert_eq!(
            fetch(&app, &thumb, Some(&app.register("Eve").await.token))
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
    // a file named .png that is not an image is not an IMAGE
    let (_, fake) = upload(&app, &alice, "fake.png", b"not really a png".to_vec()).await;
    assert!(
        !fake["fileMimeType"].as_str().unwrap().starts_with("image/") || fake["width"].is_null()
    );
}

#[tokio::test]
async fn retention_sweep_removes_old_messages_and_orphans_only() {
    if is_cluster() {
        return; // looks at files on this node's disk; the cluster keeps them in S3 (s3.rs covers retention there)
    }
    let app = spawn_with(|a| {
        a.history_days = 1;
        a.sweep_interval = 1;
    })
    .await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let (_, old_file) = upload(&app, &alice, "old.txt", b"old".to_vec()).await;
    let (_, kept_file) = upload(&app, &alice, "kept.txt", b"kept".to_vec()).await;
    let (_, orphan) = upload(&app, &alice, "never-sent.txt", b"orphan".to_vec()).await;
    let (_, fresh_orphan) = upload(&app, &alice, "about-to-send.txt", b"fresh".to_vec()).await;
    let old_msg = app
        .post(
            &format!("/chat/{chat}/messages"),
            &alice,
            json!({"messageType": "FILE", "fileUrl": old_file["fileUrl"]}),
        )
        .await
        .1["id"]
        .as_i64()
        .unwrap();
    let old_text = app.send(&alice, chat, "old text").await["id"]
        .as_i64()
        .unwrap();
    let kept_msg = app
        .post(
            &format!("/chat/{chat}/messages"),
            &alice,
            json!({"messageType": "FILE", "fileUrl": kept_file["fileUrl"]}),
        )
        .await
        .1["id"]
        .as_i64()
        .unwrap();
    let new_text = app.send(&bob, chat, "new text").await["id"]
        .as_i64()
        .unwrap();

    // age two messages, two uploads (as if days passed) in the real database
    let three_days_ago = now_secs() * 1000 - 3 * 86_400_000;
    let name = stored_name;
    app.exec_sql(&format!(
        "UPDATE messages SET created_at = {three_days_ago} WHERE id IN ({old_msg}, {old_text});
         UPDATE uploads SET created_at = {three_days_ago} WHERE name IN ('{}', '{}', '{}')",
        name(&old_file),
        name(&orphan),
        name(&kept_file)
    ))
    .await;

    let mut history = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, h) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
        history = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        // The sweep commits, then removes the files: wait for both.
        if history.len() == 2 && !stored_files(&app).contains(&name(&old_file)) {
            break;
        }
    }
    assert_eq!(
        history,
        vec![kept_msg, new_text],
        "old messages swept, the rest kept"
    );
    let files = stored_files(&app);
    assert!(
        !files.contains(&name(&old_file)),
        "file of a swept message removed"
    );
    assert!(
        !files.contains(&name(&orphan)),
        "day-old unsent upload removed"
    );
    assert!(files.contains(&name(&kept_file)), "referenced file kept");
    assert!(
        files.contains(&name(&fresh_orphan)),
        "fresh upload kept for sending"
    );
    assert_eq!(
        fetch(
            &app,
            kept_file["fileUrl"].as_str().unwrap(),
            Some(&bob.token)
        )
        .await
        .status(),
        StatusCode::OK
    );
    let (_, list) = app.get("/chat", &bob).await;
    assert_eq!(list["items"][0]["lastMessage"]["id"], new_text);
}

/// A browser sends a pasted image as a part named `blob` with its declared
/// type: with no magic bytes or extension to go by, the declared type counts.
#[tokio::test]
async fn a_declared_type_is_used_when_content_and_name_say_nothing() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let part = Part::bytes(b"not really decodable".to_vec())
        .file_name("blob")
        .mime_str("image/png")
        .unwrap();
    let (status, up) = upload_part(&app, &alice, part).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(up["fileMimeType"], "image/png", "{up}");
    // magic bytes still win over a declared type
    let part = Part::bytes(image_bytes(4, 4, image::ImageFormat::Png))
        .file_name("blob")
        .mime_str("text/html")
        .unwrap();
    let (_, up) = upload_part(&app, &alice, part).await;
    assert_eq!(up["fileMimeType"], "image/png", "{up}");
}
