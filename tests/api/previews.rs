//! Link previews against page servers this test starts on 127.0.0.1 (with
//! the test-only `--link-preview-allow-private`): title, description, site
//! name and a thumbnail stored on our server; `message:updated` and
//! `/sync`; edits; and the SSRF rules: a redirect to `0.0.0.0`, too many
//! redirects, a non-HTML type, a huge page and a server that never answers
//! are refused or cut without harm; without the flag a loopback link is
//! never fetched; `--link-previews off` fetches nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::helpers::*;

const METRICS: &str = "preview-metrics-token";

/// What the page server saw.
#[derive(Default)]
struct Seen {
    paths: Mutex<Vec<String>>,
    huge_bytes: AtomicU64,
}

#[derive(Clone)]
struct Pages {
    seen: Arc<Seen>,
    canary: SocketAddr,
}

const ARTICLE: &str = r#"<!doctype html><html><head>
<title>fallback title</title>
<meta property="og:title" content="Rust &amp; friends">
<meta property="og:description" content="A   page about
  crabs.">
<meta property="og:site_name" content="Crab News">
<meta property="og:image" content="/card.png">
<script>alert(1)</script>
</head><body>hello</body></html>"#;

async fn page(State(p): State<Pages>, Path(name): Path<String>) -> Response {
    p.seen.paths.lock().unwrap().push(name.clone());
    let html =
        |body: String| ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    match name.as_str() {
        "article" => html(ARTICLE.to_string()),
        "plain" => html("<title>Just a title</title><p>no image".to_string()),
        "card.png" => (
            [(header::CONTENT_TYPE, "image/png")],
            image_bytes(1200, 630, image::ImageFormat::Png),
        )
            .into_response(),
        "redirect" => (AxStatus::FOUND, [(header::LOCATION, "/article")]).into_response(),
        "to-unspecified" => {
            let to = format!("http://0.0.0.0:{}/secret", p.canary.port());
            (AxStatus::FOUND, [(header::LOCATION, to)]).into_response()
        }
        n if n.starts_with("loop") => {
            let i: u32 = n[4..].parse().unwrap_or(0);
            (
                AxStatus::FOUND,
                [(header::LOCATION, format!("/loop{}", i + 1))],
            )
                .into_response()
        }
        "binary" => ([(header::CONTENT_TYPE, "image/png")], ARTICLE.to_string()).into_response(),
        "huge" => {
            // A title, then 64 KiB chunks of filler for as long as anyone reads.
            let seen = p.seen.clone();
            let stream = futures_util::stream::unfold(0u32, move |i| {
                let seen = seen.clone();
                async move {
                    if i > 800 {
                        return None;
                    }
                    let chunk = if i == 0 {
                        "<html><head><title>Huge</title></head><body>".to_string()
                    } else {
                        "x".repeat(64 * 1024)
                    };
                    seen.huge_bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    Some((Ok::<_, std::io::Error>(chunk), i + 1))
                }
            });
            (
                [(header::CONTENT_TYPE, "text/html")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        _ => AxStatus::NOT_FOUND.into_response(),
    }
}

/// Starts a server on 127.0.0.1 serving `f`'s router; returns its address.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// The page server and a canary that must never be reached.
async fn pages() -> (String, Arc<Seen>, Arc<AtomicU64>) {
    let canary_hits = Arc::new(AtomicU64::new(0));
    let hits = canary_hits.clone();
    let canary = serve(Router::new().fallback(move || {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::Relaxed);
            "<title>secret</title>"
        }
    }))
    .await;
    let seen = Arc::new(Seen::default());
    let state = Pages {
        seen: seen.clone(),
        canary,
    };
    let addr = serve(Router::new().route("/{name}", get(page)).with_state(state)).await;
    (format!("http://{addr}"), seen, canary_hits)
}

/// A server that reads the request and never answers; `(url, got the
/// request, saw the connection closed)`.
async fn silent_server() -> (String, Arc<AtomicBool>, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (asked, closed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (a, c) = (asked.clone(), closed.clone());
    tokio::spawn(async move {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut buf = [0u8; 4096];
        // Bounded: the test ends long before.
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => a.store(true, Ordering::SeqCst),
                }
            }
        })
        .await;
        c.store(true, Ordering::SeqCst);
    });
    (format!("http://{addr}/slow"), asked, closed)
}

fn with_previews(a: &mut natter::config::ServeArgs) {
    a.link_preview_allow_private = true;
    a.metrics_token = Some(METRICS.into());
}

/// `natter_link_previews_total{outcome}` of the (single) node.
async fn outcome(app: &TestApp, outcome: &str) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(METRICS)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = format!("natter_link_previews_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits (bounded) until `outcome` was counted `n` times; skipped with two
/// nodes (each counts its own), where the caller's other checks still run.
async fn await_outcome(app: &TestApp, name: &str, n: u64) {
    if is_cluster() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while outcome(app, name).await < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {name} outcome in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next `message:updated` for message `id` that carries a preview of `url`.
async fn preview_of(ws: &mut WsClient, id: &Value, url: &str) -> Value {
    let wanted = |m: &Value| &m["id"] == id && m["linkPreview"]["url"] == url;
    let got = ws
        .collect_until("message:updated", wanted, Duration::ZERO)
        .await;
    got.into_iter()
        .find(wanted)
        .expect("a message:updated with the preview")
}

#[tokio::test]
async fn a_link_gets_a_preview_with_a_thumbnail_stored_here() {
    let (base, seen, _) = pages().await;
    let app = spawn_with(with_previews).await;
    let (ana, bob, eve) = (
        app.register("Ana").await,
        app.register("Bob").await,
        app.register("Eve").await,
    );
    let chat = app.direct_chat(&ana, &bob).await;
    let mut bob_ws = app.ws(&bob).await;
    let cursor = bob_ws.cursor;

    let sent = app
        .send(&ana, chat, &format!("look: {base}/redirect!"))
        .await;
    assert_eq!(sent["linkPreview"], Value::Null, "the send does not wait");
    let updated = preview_of(&mut bob_ws, &sent["id"], &format!("{base}/redirect")).await;
    let p = &updated["linkPreview"];
    assert_eq!(p["url"], format!("{base}/redirect"));
    assert_eq!(p["title"], "Rust & friends");
    assert_eq!(p["description"], "A page about crabs.");
    assert_eq!(p["siteName"], "Crab News");
    let image = p["imageUrl"].as_str().expect("a thumbnail").to_string();
    assert!(
        image.starts_with("/uploads/chat/") && image.ends_with(".jpg"),
        "{image}"
    );
    assert_eq!(
        *seen.paths.lock().unwrap(),
        ["redirect", "article", "card.png"],
        "each fetched once, by one node"
    );

    // The thumbnail is ours, small, JPEG, and the chat's members' only.
    let get = |user: &TestUser| {
        app.client
            .get(format!("{}{image}", app.base))
            .bearer_auth(user.token.clone())
            .send()
    };
    let resp = get(&bob).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let thumb = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert!(
        thumb.width() <= 320 && thumb.height() <= 320,
        "{}x{}",
        thumb.width(),
        thumb.height()
    );
    assert_eq!(get(&eve).await.unwrap().status(), StatusCode::NOT_FOUND);

    // History and /sync show it; /sync replays the fill as message:updated.
    let (_, page) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
    assert_eq!(page["items"][0]["linkPreview"], *p);
    let (_, sync) = app.get(&format!("/sync?after={cursor}"), &bob).await;
    assert!(
        sync["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "message:updated" && e["data"]["linkPreview"] == *p),
        "{sync}"
    );

    // An edit that keeps the link keeps the preview (nothing fetched).
    let id = sent["id"].as_i64().unwrap();
    let path = format!("/chat/{chat}/messages/{id}");
    let (_, kept) = app
        .patch(
            &path,
            &ana,
            json!({"content": format!("still {base}/redirect")}),
        )
        .await;
    assert_eq!(kept["linkPreview"], *p);
    // A new first link replaces it.
    let (_, edited) = app
        .patch(&path, &ana, json!({"content": format!("now {base}/plain")}))
        .await;
    assert_eq!(edited["linkPreview"], Value::Null);
    let again = preview_of(&mut bob_ws, &sent["id"], &format!("{base}/plain")).await;
    assert_eq!(
        again["linkPreview"],
        json!({"url": format!("{base}/plain"), "title": "Just a title", "description": null,
               "siteName": "127.0.0.1", "imageUrl": null})
    );
    assert_eq!(seen.paths.lock().unwrap().len(), 4);
    // The old thumbnail no longer belongs to any message of the chat.
    assert_eq!(get(&bob).await.unwrap().status(), StatusCode::NOT_FOUND);

    // A deleted message loses its preview.
    let (_, tomb) = app.delete(&path, &ana).await;
    assert_eq!(tomb["linkPreview"], Value::Null);
}

#[tokio::test]
async fn every_hop_is_checked_and_bad_pages_are_refused_or_cut() {
    let (base, seen, canary) = pages().await;
    let app = spawn_with(with_previews).await;
    let (ana, bob) = (app.register("Ana").await, app.register("Bob").await);
    let chat = app.direct_chat(&ana, &bob).await;
    let mut bob_ws = app.ws(&bob).await;

    // A redirect to 0.0.0.0 (this machine, by another name) is not followed.
    app.send(&ana, chat, &format!("{base}/to-unspecified"))
        .await;
    await_outcome(&app, "refused_address", 1).await;
    // Redirects beyond 3 are not followed.
    app.send(&ana, chat, &format!("{base}/loop0")).await;
    await_outcome(&app, "refused_redirects", 1).await;
    let loops = seen
        .paths
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with("loop"))
        .count();
    assert_eq!(loops, 4, "the link and 3 redirects");
    // A link to something that is not HTML is not parsed.
    app.send(&ana, chat, &format!("{base}/binary")).await;
    await_outcome(&app, "refused_content", 1).await;
    // A huge page is read up to 512 KiB: enough for its head, the rest never.
    let huge = app.send(&ana, chat, &format!("{base}/huge")).await;
    let updated = preview_of(&mut bob_ws, &huge["id"], &format!("{base}/huge")).await;
    assert_eq!(updated["linkPreview"]["title"], "Huge");
    let sent_bytes = seen.huge_bytes.load(Ordering::Relaxed);
    // (Socket buffers hold a few MB; the page is 50 MB.)
    assert!(
        sent_bytes < 400 * 64 * 1024,
        "the server produced {sent_bytes} bytes for a 512 KiB read"
    );
    // A server that never answers holds nothing up: the send returns, the
    // fetch gives up (5 s) and hangs up.
    let (slow, asked, closed) = silent_server().await;
    let (status, _) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &ana,
            json!({"messageType": "LINK", "content": slow}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !closed.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fetch never hung up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(asked.load(Ordering::SeqCst), "the slow server was asked");
    await_outcome(&app, "failed", 1).await;
    // Only the huge page made a preview; the canary was never reached.
    let updates = bob_ws
        .collect_events("message:updated", Duration::from_millis(500))
        .await;
    assert!(updates.is_empty(), "{updates:?}");
    assert_eq!(canary.load(Ordering::Relaxed), 0, "nothing reached 0.0.0.0");
    let (_, page) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
    let previews: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["linkPreview"].is_null())
        .collect();
    assert_eq!(previews.len(), 1);
}

#[tokio::test]
async fn without_the_test_flag_loopback_links_are_never_fetched() {
    let (base, seen, _) = pages().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let app = spawn_with(|a| a.metrics_token = Some(METRICS.into())).await;
    let (ana, bob) = (app.register("Ana").await, app.register("Bob").await);
    let chat = app.direct_chat(&ana, &bob).await;
    for host in [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "127.1",
        "[::ffff:127.0.0.1]",
    ] {
        app.send(&ana, chat, &format!("http://{host}:{port}/article"))
            .await;
    }
    // Refused for the address, before the port (80/443 only) is looked at.
    await_outcome(&app, "refused_address", 5).await;
    assert_eq!(outcome(&app, "refused_port").await, 0);
    assert!(
        seen.paths.lock().unwrap().is_empty(),
        "{:?}",
        seen.paths.lock().unwrap()
    );
}

#[tokio::test]
async fn link_previews_off_fetches_nothing() {
    let (base, seen, _) = pages().await;
    let app = spawn_with(|a| {
        with_previews(a);
        a.link_previews = natter::previews::Setting::Off;
    })
    .await;
    let (ana, bob) = (app.register("Ana").await, app.register("Bob").await);
    let chat = app.direct_chat(&ana, &bob).await;
    let mut bob_ws = app.ws(&bob).await;
    app.send(&ana, chat, &format!("{base}/article")).await;
    // Bounded look for what an enabled server does within milliseconds.
    let updates = bob_ws
        .collect_events("message:updated", Duration::from_millis(1500))
        .await;
    assert!(updates.is_empty(), "{updates:?}");
    assert!(seen.paths.lock().unwrap().is_empty());
}

/// Benchmark, not a test (no timing is asserted): the send latency of
/// messages whose link points at a server that never answers, against
/// plain messages, interleaved in one run. Numbers in BENCHMARKS.md.
/// `cargo test --test api previews::bench -- --ignored --nocapture`
#[tokio::test]
#[ignore]
async fn bench_send_latency_with_a_link_to_a_silent_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds every connection (each read until the fetch hangs up).
    let server = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(60), async {
                    while let Ok(n) = sock.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            });
        }
    });
    let app = spawn_with(|a| {
        with_previews(a);
        a.send_rate = 0;
    })
    .await;
    let (ana, bob) = (app.register("Ana").await, app.register("Bob").await);
    let chat = app.direct_chat(&ana, &bob).await;
    let (mut plain, mut linked) = (Vec::new(), Vec::new());
    for i in 0..400 {
        let with_link = i % 2 == 1;
        let content = if with_link {
            format!("see http://{addr}/page/{i}")
        } else {
            format!("plain message {i}")
        };
        let t = std::time::Instant::now();
        let (status, _) = app
            .post(
                &format!("/chat/{chat}/messages"),
                &ana,
                json!({"messageType": "TEXT", "content": content}),
            )
            .await;
        let took = t.elapsed();
        assert_eq!(status, StatusCode::CREATED);
        if i >= 40 {
            if with_link {
                linked.push(took)
            } else {
                plain.push(took)
            }
        }
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    };
    for (name, v) in [
        ("plain", &mut plain),
        ("link to a silent server", &mut linked),
    ] {
        println!(
            "send latency, {name}: n={} p50={:.2} ms p95={:.2} ms p99={:.2} ms",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.95),
            pct(v, 0.99)
        );
    }
    println!(
        "previews outcome failed={} skipped={}",
        outcome(&app, "failed").await,
        outcome(&app, "skipped").await
    );
    server.abort();
}
