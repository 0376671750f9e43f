//! Hardening round 2 (issue 14): what an attack on a running natter found,
//! each pinned by a test that failed before its fix — memory under image
//! bombs, disk under unsent uploads, forwarded addresses, the login hash
//! queue, file modes, look-alike identities, CSP and caching of private files.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::crash::post;
use crate::files::upload;
use crate::helpers::*;

/// A PNG of `w` × `h` RGBA pixels, compressed row by row (a few hundred KB
/// for a decompression bomb of hundreds of MB), never held whole in memory.
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Balanced);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![0u8; w as usize * 4];
        for _ in 0..h {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// `POST /chat/upload` of one file to a server started as a binary.
async fn upload_at(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
    client
        .post(format!("{base}/chat/upload"))
        .bearer_auth(token)
        .multipart(form)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap()
}

async fn register_at(client: &reqwest::Client, base: &str, name: &str) -> String {
    let body =
        json!({"email": format!("{name}@bomb.test"), "password": "password123", "name": name});
    let (_, resp) = post(client, format!("{base}/auth/register"), None, body)
        .await
        .unwrap();
    resp["token"].as_str().expect("token").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_image_bombs_keep_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_binary(dir.path(), &["--upload-rate", "0"], |_| {});
    let client = reqwest::Client::new();
    let token = register_at(&client, &server.base, "bomber").await;
    // 11,000 × 11,000 RGBA: 484 MB decoded, well under 1 MB on the wire.
    let bomb = tokio::task::spawn_blocking(|| png_bomb(11_000, 11_000))
        .await
        .unwrap();
    assert!(bomb.len() < 2_000_000, "bomb is {} bytes", bomb.len());
    let uploads = (0..16).map(|i| {
        let (client, base, token, bomb) = (
            client.clone(),
            server.base.clone(),
            token.clone(),
            bomb.clone(),
        );
        async move {
            let resp = upload_at(&client, &base, &token, &format!("bomb{i}.png"), bomb).await;
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    });
    for (status, body) in futures_util::future::join_all(uploads).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["width"], 11_000, "dimensions come from the header");
        assert!(
            body["thumbnailUrl"].is_null(),
            "no preview of a bomb: {body}"
        );
    }
    // A real photo-sized PNG still gets its preview, decoded row by row.
    let photo = image_bytes(3000, 2000, image::ImageFormat::Png);
    let body: Value = upload_at(&client, &server.base, &token, "photo.png", photo)
        .await
        .json()
        .await
        .unwrap();
    let thumb_url = body["thumbnailUrl"].as_str().expect("a preview");
    let thumb = client
        .get(format!("{}{thumb_url}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let preview = image::load_from_memory(&thumb).unwrap();
    assert_eq!((preview.width(), preview.height()), (320, 213));
    let peak_mb = server.status_kb("VmHWM") / 1024;
    assert!(
        peak_mb < 300,
        "peak RSS {peak_mb} MB under 16 parallel bombs"
    );
}

#[tokio::test]
async fn unsent_uploads_have_a_quota_and_the_disk_a_floor() {
    if is_cluster() {
        return; // the free-disk floor is this node's disk; the cluster keeps files in S3
    }
    let app = spawn_with(|a| a.upload_quota = 5_000).await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let (s, first) = upload(&app, &ana, "a.bin", vec![1; 3_000]).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, over) = upload(&app, &ana, "b.bin", vec![2; 3_000]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{over}");
    assert_eq!(over["error"]["code"], "quota_exceeded");
    assert!(over["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unsent"));
    // The quota is per user, and only counts uploads not sent yet.
    assert_eq!(
        upload(&app, &bob, "c.bin", vec![3; 3_000]).await.0,
        StatusCode::CREATED
    );
    let (s, _) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &ana,
            json!({"messageType": "FILE", "fileUrl": first["fileUrl"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        upload(&app, &ana, "b.bin", vec![2; 3_000]).await.0,
        StatusCode::CREATED
    );
    // Parallel uploads cannot pass it together either.
    let results =
        futures_util::future::join_all((0..4).map(|i| upload(&app, &bob, "p.bin", vec![i; 1_500])))
            .await;
    let stored = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(stored, 1, "3,000 + 1,500 fits once in 5,000");
    let files = std::fs::read_dir(app.dir.path().join("uploads/chat"))
        .unwrap()
        .count();
    assert_eq!(files, 4, "refused uploads leave nothing on disk");

    // Below the free-disk floor uploads get 507 and messages still work.
    let full = spawn_with(|a| a.min_free_disk = u64::MAX / 2).await;
    let cara = full.register("Cara").await;
    let dan = full.register("Dan").await;
    let chat = full.direct_chat(&cara, &dan).await;
    let (s, body) = upload(&full, &cara, "x.txt", b"hello".to_vec()).await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_storage");
    assert_eq!(
        full.send(&cara, chat, "still chatting").await["content"],
        "still chatting"
    );
}

#[tokio::test]
async fn unsent_uploads_are_swept_after_an_hour_but_avatars_stay() {
    if is_cluster() {
        return; // looks at files on this node's disk; the cluster keeps them in S3 (s3.rs covers retention there)
    }
    let app = spawn_with(|a| a.sweep_interval = 1).await;
    let ana = app.register("Ana").await;
    let (_, stale) = upload(&app, &ana, "stale.txt", b"stale".to_vec()).await;
    let (_, recent) = upload(&app, &ana, "recent.txt", b"recent".to_vec()).await;
    let (_, avatar) = upload(
        &app,
        &ana,
        "me.png",
        image_bytes(64, 64, image::ImageFormat::Png),
    )
    .await;
    let (s, _) = app
        .patch("/auth/me", &ana, json!({"avatarUrl": avatar["fileUrl"]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let name = stored_name;
    let minutes_ago = |m: i64| now_secs() * 1000 - m * 60_000;
    app.exec_sql(&format!(
        "UPDATE uploads SET created_at = {} WHERE name IN ('{}', '{}');
         UPDATE uploads SET created_at = {} WHERE name = '{}'",
        minutes_ago(61),
        name(&stale),
        name(&avatar),
        minutes_ago(50),
        name(&recent)
    ))
    .await;
    let chat_dir = app.dir.path().join("uploads/chat");
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !chat_dir.join(name(&stale)).exists() {
            gone = true;
            break;
        }
    }
    assert!(gone, "an upload unsent for 61 minutes is swept");
    assert!(chat_dir.join(name(&recent)).exists(), "50 minutes: kept");
    assert!(chat_dir.join(name(&avatar)).exists(), "an avatar is kept");
}

/// `POST /auth/login` for an unknown email from the test's loopback peer,
/// carrying `X-Forwarded-For: xff` when given.
async fn login_via(app: &TestApp, n: usize, xff: Option<&str>) -> StatusCode {
    let mut req = app
        .client
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"email": format!("nobody{n}@x.io"), "password": "password123"}));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap().status()
}

/// Logins (each for another unknown email) until the per-IP limit answers
/// 429; returns how many got through first (None: never limited in 30).
async fn logins_until_limited(
    app: &TestApp,
    xff: impl Fn(usize) -> Option<String>,
) -> Option<usize> {
    for n in 0..30 {
        match login_via(app, n + rand_suffix(), xff(n).as_deref()).await {
            StatusCode::TOO_MANY_REQUESTS => return Some(n),
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected {other}"),
        }
    }
    None
}

fn rand_suffix() -> usize {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1000, std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    if is_cluster() {
        return; // per-IP rate limits are counted per node (README)
    }
    // login_rate 1 → 12 attempts per client IP per minute.
    let trusting = |a: &mut natter::config::ServeArgs| {
        a.login_rate = 1;
        a.trust_proxy = Some(natter::config::TrustedProxies::parse("loopback").unwrap());
    };
    // A client rotating the left part of the chain is still one client: the
    // rightmost address not a trusted proxy is the one the proxy saw.
    let app = spawn_with(trusting).await;
    let n = logins_until_limited(&app, |n| {
        Some(format!("10.9.{}.{}, 203.0.113.7", n / 250, n % 250))
    })
    .await;
    assert_eq!(
        n,
        Some(12),
        "rotating the client-written entries changes nothing"
    );
    // `ip:port` entries are parsed, not skipped in favour of an earlier one.
    let app = spawn_with(trusting).await;
    let n = logins_until_limited(&app, |n| Some(format!("10.1.1.{n}, 203.0.113.8:4711"))).await;
    assert_eq!(n, Some(12), "ip:port is that client");
    // A forwarded loopback address is not the exempt local host.
    let app = spawn_with(trusting).await;
    let n = logins_until_limited(&app, |_| Some("127.0.0.1".into())).await;
    assert_eq!(n, Some(12), "forwarded 127.0.0.1 has a budget like anyone");
    let app = spawn_with(trusting).await;
    let n = logins_until_limited(&app, |_| Some("::1".into())).await;
    assert_eq!(n, Some(12), "forwarded ::1 too");
    // One IPv6 /64 is one client.
    let app = spawn_with(trusting).await;
    let n = logins_until_limited(&app, |n| Some(format!("2001:db8:5:6::{:x}", n + 1))).await;
    assert_eq!(n, Some(12), "150 addresses of a /64 are one client");
    // Without --trust-proxy the header is ignored: the loopback peer (the
    // host, or an untrusted proxy) has no per-IP budget, whatever it claims.
    let app = spawn_with(|a| a.login_rate = 1).await;
    let n = logins_until_limited(&app, |_| Some("203.0.113.9".into())).await;
    assert_eq!(
        n, None,
        "an untrusted peer's X-Forwarded-For is not believed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_burst_fails_fast_instead_of_parking_everyone() {
    let app = spawn_with(|a| a.login_rate = 0).await;
    let ana = app.register("Ana").await;
    let burst = (0..400).map(|n| login_via(&app, 1_000_000 + n, None));
    let statuses = futures_util::future::join_all(burst).await;
    let busy = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(busy + refused, 400, "{statuses:?}");
    assert!(busy > 0, "a queue of 400 hashes is cut short");
    // The busy answer is the error envelope with Retry-After.
    let mut retry_after = None;
    let mut body = Value::Null;
    for _ in 0..3 {
        let app = &app;
        let all = futures_util::future::join_all((0..60).map(|n| async move {
            app.client
                .post(format!("{}/auth/login", app.base))
                .json(&json!({"email": format!("x{n}@x.io"), "password": "password123"}))
                .send()
                .await
                .unwrap()
        }))
        .await;
        if let Some(r) = all
            .into_iter()
            .find(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        {
            retry_after = r.headers().get("retry-after").cloned();
            body = r.json().await.unwrap();
            break;
        }
    }
    assert_eq!(retry_after.expect("a 503 answer").to_str().unwrap(), "1");
    assert_eq!(body["error"]["code"], "server_busy");
    // Once the burst is over, a real login works at once.
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": ana.email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[cfg(unix)]
#[tokio::test]
async fn data_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = parent.path().join("data");
    let with_umask_022 = |cmd: &mut std::process::Command| {
        // SAFETY: umask is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
    };
    let server = spawn_binary(&data, &[], with_umask_022);
    let client = reqwest::Client::new();
    let token = register_at(&client, &server.base, "private").await;
    let resp = upload_at(&client, &server.base, &token, "s.txt", b"secret".to_vec()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // `natter backup` copies the SQLite file; on PostgreSQL the data dir
    // holds the secret and uploads only
    let backup = parent.path().join("backup.db");
    if !is_postgres() {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_natter"));
        cmd.arg("backup").arg(&backup).arg("--data-dir").arg(&data);
        with_umask_022(&mut cmd);
        assert!(cmd.status().unwrap().success());
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data dir");
    let mut checked = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                checked += 1;
            }
        }
    }
    if is_postgres() {
        assert!(checked >= 2, "secret, upload: {checked} files");
    } else {
        assert!(
            checked >= 4,
            "database, WAL, secret, upload: {checked} files"
        );
        assert_eq!(mode(&backup), 0o600, "backup");
    }
    drop(server);
}

#[tokio::test]
async fn look_alike_identities_are_refused_and_emails_shown_to_contacts_only() {
    let app = spawn_app().await;
    let register = |email: &str, name: &str| {
        let body = json!({"email": email, "password": "password123", "name": name});
        let app = &app;
        async move {
            app.call(reqwest::Method::POST, "/auth/register", None, Some(body))
                .await
        }
    };
    for email in [
        "an\u{200B}a@example.com", // zero-width space
        "ana\u{202E}@example.com", // bidi override
        "\u{0430}na@example.com",  // Cyrillic а + Latin na
        "ana@ex\u{0430}mple.com",  // mixed domain label
    ] {
        let (s, body) = register(email, "Ana").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{email:?}: {body}");
        assert_eq!(body["error"]["field"], "email");
    }
    let (s, body) = register("ana@example.com", "Ana \u{202E}gnp.exe").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "name");
    // Fullwidth forms are the same address (NFKC): no second account.
    let (s, _) = register("ana@example.com", "Ana").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = register("ａｎａ@ｅｘａｍｐｌｅ.ｃｏｍ", "Ana 2").await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "ＡＮＡ@example.com", "password": "password123"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "login normalises the same way");
    // A whole-script address is fine.
    assert_eq!(
        register("иван@пример.рф", "Иван").await.0,
        StatusCode::CREATED
    );
    // Emoji names keep their joiners.
    assert_eq!(
        register(
            "fam@example.com",
            "Fam \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"
        )
        .await
        .0,
        StatusCode::CREATED
    );

    let bob = app.register("Bob").await;
    let (s, _) = app
        .post(
            "/chat",
            &bob,
            json!({"isGroup": true, "name": "evil\u{202E}txt.exe", "participantIds": []}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "chat names too");
    let search = |q: &str| {
        let path = format!("/chat/users/search?q={}", urlencode(q));
        let app = &app;
        let bob = bob.clone();
        async move {
            app.get(&path, &bob).await.1["items"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let found = search("ana").await;
    let ana = found
        .iter()
        .find(|u| u["name"] == "Ana")
        .expect("found by name");
    assert_eq!(
        ana["email"], "a•••@example.com",
        "a stranger's email is masked"
    );
    let found = search("ana@example.com").await;
    assert_eq!(
        found[0]["email"], "ana@example.com",
        "an exact address is confirmed"
    );
    let ana_id = ana["id"].as_i64().unwrap();
    let (s, _) = app
        .post(
            "/chat",
            &bob,
            json!({"isGroup": false, "participantIds": [ana_id]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let found = search("ana").await;
    let ana = found.iter().find(|u| u["name"] == "Ana").unwrap();
    assert_eq!(ana["email"], "ana@example.com", "contacts see it");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn csp_connects_to_self_only_and_private_files_revalidate() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let connect = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("connect-src"))
        .expect("connect-src");
    assert_eq!(connect, "connect-src 'self'", "no ws:/wss: to any host");
    let ana = app.register("Ana").await;
    let (_, file) = upload_part(&app, &ana, Part::bytes(b"hi".to_vec()).file_name("a.txt")).await;
    let resp = app
        .client
        .get(format!("{}{}", app.base, file["fileUrl"].as_str().unwrap()))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cache = resp.headers()["cache-control"].to_str().unwrap();
    assert!(
        cache.contains("no-cache") && !cache.contains("max-age"),
        "{cache}"
    );
    assert!(resp.headers().contains_key("etag"));
}
