//! `--uploads s3://…`: files in an S3-compatible bucket (moto, a real S3
//! server from PyPI, started per test on 127.0.0.1), behaving as local ones:
//! streaming with the size cap, private downloads with Range and ETag,
//! thumbnails, retention; an S3 failure answers 503 and records nothing.

use reqwest::multipart::Part;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A natter process (the real binary) storing uploads in `s3`.
fn serve_on(s3: &S3Server, extra: &[&str]) -> (Server, TestApp) {
    let dir = tempfile::tempdir().expect("temp dir");
    let uploads = s3.uploads_url();
    let mut args = vec!["--uploads", uploads.as_str(), "--upload-rate", "0"];
    args.extend_from_slice(extra);
    let server = spawn_binary(dir.path(), &args, |cmd| {
        for (k, v) in S3_ENV {
            cmd.env(k, v);
        }
    });
    let app = TestApp::attach_in(&server.base, DataDir::new(dir, server.db.clone()));
    (server, app)
}

/// Files natter keeps on its own disk under `uploads/chat/`.
fn local_files(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.dir.path().join("uploads/chat"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn uploads_live_in_the_bucket_with_range_etag_thumbnails_and_retention() {
    let s3 = S3Server::start("natter-files").await;
    let (_server, app) = serve_on(
        &s3,
        &["--upload-max-size", "200000", "--sweep-interval", "1"],
    );
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.direct_chat(&alice, &bob).await;

    // An image: the file and its preview go to the bucket, nothing stays on disk.
    let png = image_bytes(640, 480, image::ImageFormat::Png);
    let (status, up) = upload_part(
        &app,
        &alice,
        Part::bytes(png.clone()).file_name("photo.png"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    let name = stored_name(&up);
    let thumb = up["thumbnailUrl"].as_str().expect("a preview").to_string();
    let thumb_name = thumb.rsplit('/').next().unwrap().to_string();
    let mut keys = s3.keys().await;
    keys.sort();
    let mut want = vec![format!("chat/{name}"), format!("chat/{thumb_name}")];
    want.sort();
    assert_eq!(keys, want, "the bucket holds the file and its preview");
    assert!(
        local_files(&app).is_empty(),
        "left on disk: {:?}",
        local_files(&app)
    );

    // Sent, then read by the other member: whole, a range, revalidated.
    let (status, _) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &alice,
            json!({"messageType": "IMAGE", "content": "", "fileUrl": up["fileUrl"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let url = format!("{}{}", app.base, up["fileUrl"].as_str().unwrap());
    let r = app
        .client
        .get(&url)
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert!(r.headers().contains_key("last-modified"));
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());
    let r = app
        .client
        .get(&url)
        .bearer_auth(&bob.token)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", png.len())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &png[10..20]);
    let r = app
        .client
        .get(&url)
        .bearer_auth(&bob.token)
        .header("Range", format!("bytes={}-", png.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = app
        .client
        .get(&url)
        .bearer_auth(&bob.token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .client
        .get(format!("{}{thumb}", app.base))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert!(image::load_from_memory(&r.bytes().await.unwrap()).is_ok());
    // Private as on disk: someone outside the chat gets 404.
    let r = app
        .client
        .get(&url)
        .bearer_auth(&eve.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Over the cap: 413, and nothing new in the bucket or on disk.
    let big = vec![7u8; 300_000];
    let (status, body) = upload_part(&app, &alice, Part::bytes(big).file_name("big.bin")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(s3.keys().await.len(), 2);

    // Retention: an upload never sent is swept from the bucket.
    let (status, orphan) = upload_part(
        &app,
        &alice,
        Part::bytes(b"never sent".to_vec()).file_name("note.txt"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{orphan}");
    let orphan_key = format!("chat/{}", stored_name(&orphan));
    assert!(s3.keys().await.contains(&orphan_key));
    app.exec_sql(&format!(
        "UPDATE uploads SET created_at = 0 WHERE name = '{}'",
        stored_name(&orphan)
    ))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while s3.keys().await.contains(&orphan_key) {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan stayed in the bucket"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        s3.keys().await.len(),
        2,
        "the sent file and its preview stay"
    );
}

#[tokio::test]
async fn a_failing_bucket_answers_503_and_records_nothing() {
    let mut s3 = S3Server::start("natter-down").await;
    let (_server, app) = serve_on(&s3, &[]);
    let alice = app.register("Alice").await;
    s3.kill();
    let (status, body) = upload_part(
        &app,
        &alice,
        Part::bytes(b"hello".to_vec()).file_name("a.txt"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        local_files(&app).is_empty(),
        "left on disk: {:?}",
        local_files(&app)
    );
    assert_eq!(
        app.query_i64("SELECT COUNT(*) FROM uploads").await,
        0,
        "an upload was recorded"
    );
    let (status, _) = app.get("/auth/me", &alice).await;
    assert_eq!(status, 200, "the rest of the server keeps working");
}

#[tokio::test]
async fn an_unreachable_bucket_stops_the_start() {
    let err = serve_refuses(&[
        "--uploads",
        "s3://nowhere?endpoint=http://127.0.0.1:1&region=us-east-1",
    ]);
    assert!(
        err.contains("cannot reach the upload bucket"),
        "unclear error: {err}"
    );
    let err = serve_refuses(&["--uploads", "s3://bucket?secret=x"]);
    assert!(err.contains("--uploads"), "unclear error: {err}");
}
