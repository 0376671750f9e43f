//! Web Push, part one: `GET /push/key` (the VAPID public key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;

use crate::helpers::*;

async fn public_key(app: &TestApp) -> String {
    // Public: no token needed.
    let (status, body) = app
        .call(reqwest::Method::GET, "/push/key", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = body["publicKey"].as_str().expect("publicKey").to_string();
    let point = URL_SAFE_NO_PAD
        .decode(&key)
        .expect("base64url without padding");
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    assert_eq!(point[0], 4);
    assert!(
        p256::PublicKey::from_sec1_bytes(&point).is_ok(),
        "on the curve"
    );
    key
}

#[tokio::test]
async fn the_vapid_key_is_made_once_kept_private_and_shared_by_every_node() {
    let app = spawn_app().await;
    let key = public_key(&app).await;
    let file = app.dir.path().join("vapid-key");
    if is_postgres() {
        assert!(
            !file.exists(),
            "on PostgreSQL the key lives in the database"
        );
        let peer = spawn_peer(&app, |_| {}).await;
        assert_eq!(
            public_key(&peer).await,
            key,
            "every node signs with the same key"
        );
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file)
                .expect("vapid-key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "vapid-key is private");
        }
    }
    // Kept across a restart: browsers' subscriptions stay valid.
    let dir = app.stop().await;
    let again = spawn_in(dir, |_| {}).await;
    assert_eq!(public_key(&again).await, key);
}

#[tokio::test]
async fn a_bad_vapid_subject_stops_the_start() {
    let err = serve_refuses(&["--vapid-subject", "natter admin"]);
    assert!(err.contains("--vapid-subject"), "unclear error: {err}");
}

/// A browser's subscription keys: a fresh P-256 point and a 16-byte secret.
fn browser_keys() -> serde_json::Value {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let secret = loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(s) = p256::SecretKey::from_slice(&bytes) {
            break s;
        }
    };
    let point = secret.public_key().to_encoded_point(false);
    let auth: [u8; 16] = rand::random();
    serde_json::json!({
        "p256dh": URL_SAFE_NO_PAD.encode(point.as_bytes()),
        "auth": URL_SAFE_NO_PAD.encode(auth),
    })
}

#[tokio::test]
async fn subscriptions_are_validated_replaced_capped_and_removed() {
    use serde_json::json;
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let count = |user: i64| {
        let app = &app;
        async move {
            app.query_i64(&format!(
                "SELECT COUNT(*) FROM push_subscriptions WHERE user_id = {user}"
            ))
            .await
        }
    };
    let endpoint = "https://push.example.com/wpush/v2/device-1";
    let sub = json!({"endpoint": endpoint, "keys": browser_keys()});
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            "/push/subscriptions",
            None,
            Some(sub.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post("/push/subscriptions", &ana, sub.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The same endpoint again (new keys): replaced, 200.
    let again = json!({"endpoint": endpoint, "keys": browser_keys()});
    let (status, body) = app.post("/push/subscriptions", &ana, again).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count(ana.id).await, 1);

    // Bad input: 400 naming the field, nothing stored.
    let keys = browser_keys();
    let cases = [
        (
            json!({"endpoint": "http://push.example.com/x", "keys": keys}),
            "endpoint",
        ),
        (
            json!({"endpoint": "https://127.0.0.1/x", "keys": keys}),
            "endpoint",
        ),
        (
            json!({"endpoint": "https://10.0.0.8/x", "keys": keys}),
            "endpoint",
        ),
        (
            json!({"endpoint": "https://[::1]/x", "keys": keys}),
            "endpoint",
        ),
        (
            json!({"endpoint": "https://localhost/x", "keys": keys}),
            "endpoint",
        ),
        (
            json!({"endpoint": format!("https://push.example.com/{}", "a".repeat(1100)), "keys": keys}),
            "endpoint",
        ),
        (
            json!({"endpoint": "https://push.example.com/2", "keys": {"p256dh": URL_SAFE_NO_PAD.encode([4u8; 65]), "auth": keys["auth"]}}),
            "keys.p256dh",
        ),
        (
            json!({"endpoint": "https://push.example.com/2", "keys": {"p256dh": "not base64!", "auth": keys["auth"]}}),
            "keys.p256dh",
        ),
        (
            json!({"endpoint": "https://push.example.com/2", "keys": {"p256dh": keys["p256dh"], "auth": URL_SAFE_NO_PAD.encode([1u8; 8])}}),
            "keys.auth",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = app.post("/push/subscriptions", &ana, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (status, err) = app
        .post("/push/subscriptions", &ana, json!({"endpoint": endpoint}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(count(ana.id).await, 1);

    // At most 20 per user: the oldest makes room.
    for i in 0..25 {
        let sub =
            json!({"endpoint": format!("https://push.example.com/d{i}"), "keys": browser_keys()});
        let (status, body) = app.post("/push/subscriptions", &ana, sub).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(count(ana.id).await, 20);

    // The browser signs in as Bob: the endpoint moves to him.
    let moved = json!({"endpoint": "https://push.example.com/d24", "keys": browser_keys()});
    let (status, _) = app.post("/push/subscriptions", &bob, moved).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((count(ana.id).await, count(bob.id).await), (19, 1));

    // Signing out removes it; again is fine; someone else's is untouched.
    let gone = json!({"endpoint": "https://push.example.com/d24"});
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            "/push/subscriptions",
            Some(&ana.token),
            Some(gone.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(count(bob.id).await, 1, "Ana cannot remove Bob's");
    for _ in 0..2 {
        let (status, _) = app
            .call(
                reqwest::Method::DELETE,
                "/push/subscriptions",
                Some(&bob.token),
                Some(gone.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(count(bob.id).await, 0);
}

#[tokio::test]
async fn a_member_mutes_a_chat_for_themselves_only() {
    use serde_json::json;
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.group(&ana, &[&bob], "Muted").await;
    let settings = format!("/chat/{chat}/settings");
    let mut ana_phone = app.ws(&ana).await;
    let mut bob_ws = app.ws(&bob).await;

    let until = now_secs() * 1000 + 3_600_000;
    let (status, body) = app
        .patch(&settings, &ana, json!({"mutedUntil": until}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mutedUntil"], until);
    assert_eq!(body["id"], chat);
    // Her other devices hear it; Bob does not.
    let ev = ana_phone
        .collect_until(
            "chat:updated",
            |c| c["mutedUntil"] == until,
            std::time::Duration::from_millis(10),
        )
        .await;
    assert!(ev.iter().any(|c| c["mutedUntil"] == until), "{ev:?}");
    bob_ws
        .expect_no_event("chat:updated", std::time::Duration::from_millis(300))
        .await;
    let (_, mine) = app.get(&format!("/chat/{chat}"), &ana).await;
    assert_eq!(mine["mutedUntil"], until);
    let (_, his) = app.get(&format!("/chat/{chat}"), &bob).await;
    assert!(his["mutedUntil"].is_null(), "{his}");
    let (_, list) = app.get("/chat", &ana).await;
    let listed = list["items"]
        .as_array()
        .or_else(|| list.as_array())
        .expect("chat list")
        .iter()
        .find(|c| c["id"] == chat)
        .cloned()
        .expect("the chat in the list");
    assert_eq!(listed["mutedUntil"], until);

    // A change everyone hears keeps each member's own mute.
    let (status, _) = app
        .patch(&format!("/chat/{chat}"), &ana, json!({"name": "Renamed"}))
        .await;
    assert!(status.is_success(), "{status}");
    let mine = ana_phone
        .collect_until(
            "chat:updated",
            |c| c["name"] == "Renamed",
            std::time::Duration::from_millis(10),
        )
        .await;
    assert_eq!(mine.last().unwrap()["mutedUntil"], until, "{mine:?}");
    let his = bob_ws
        .collect_until(
            "chat:updated",
            |c| c["name"] == "Renamed",
            std::time::Duration::from_millis(10),
        )
        .await;
    assert!(his.last().unwrap()["mutedUntil"].is_null(), "{his:?}");

    // Absent leaves it; null unmutes; a past time reads as not muted.
    let (_, body) = app.patch(&settings, &ana, json!({})).await;
    assert_eq!(body["mutedUntil"], until);
    let (_, body) = app
        .patch(&settings, &ana, json!({"mutedUntil": null}))
        .await;
    assert!(body["mutedUntil"].is_null(), "{body}");
    let (_, body) = app
        .patch(&settings, &ana, json!({"mutedUntil": 1000}))
        .await;
    assert!(body["mutedUntil"].is_null(), "{body}");

    for bad in [
        json!({"mutedUntil": "soon"}),
        json!({"mutedUntil": -5}),
        json!({"mutedUntil": 1e20}),
    ] {
        let (status, err) = app.patch(&settings, &ana, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
        assert_eq!(err["error"]["field"], "mutedUntil", "{bad}: {err}");
    }
    let (status, _) = app
        .patch(&settings, &eve, json!({"mutedUntil": until}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "outsiders learn nothing");
}

/// What the stub push service received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// A push service stub on 127.0.0.1: records every request; answers 410
/// under `/gone/`, never answers under `/slow/`, else 201.
pub(crate) async fn push_service() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Received>>>) {
    use axum::extract::{Request, State};
    type Log = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;
    async fn record(State(log): State<Log>, req: Request) -> axum::http::StatusCode {
        let path = req.uri().path().to_string();
        let headers = req.headers().clone();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec();
        log.lock().unwrap().push(Received {
            path: path.clone(),
            headers,
            body,
        });
        if path.starts_with("/slow/") {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
        if path.starts_with("/gone/") {
            axum::http::StatusCode::GONE
        } else {
            axum::http::StatusCode::CREATED
        }
    }
    let log: Log = Default::default();
    let app = axum::Router::new()
        .fallback(axum::routing::post(record))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, log)
}

/// web-push-native's `Auth` (a generic-array 0.14 array) from 16 bytes.
#[allow(deprecated)]
fn ua_auth(auth: &[u8; 16]) -> &web_push_native::Auth {
    web_push_native::Auth::from_slice(auth)
}

/// A push's payload as the browser reads it: decrypted with its key and
/// auth secret (RFC 8291), at most 3 KB of JSON.
pub(crate) fn open_push(
    push: &Received,
    secret: &p256::SecretKey,
    auth: &[u8; 16],
) -> serde_json::Value {
    let plain = web_push_native::decrypt(push.body.clone(), secret, ua_auth(auth))
        .expect("decrypts with the browser's key (RFC 8291)");
    assert!(plain.len() <= 3072);
    serde_json::from_slice(&plain).unwrap()
}

/// A browser's key pair and auth secret, and its subscription JSON.
pub(crate) fn browser(endpoint: &str) -> (p256::SecretKey, [u8; 16], serde_json::Value) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let secret = loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(s) = p256::SecretKey::from_slice(&bytes) {
            break s;
        }
    };
    let auth: [u8; 16] = rand::random();
    let point = secret.public_key().to_encoded_point(false);
    let sub = serde_json::json!({"endpoint": endpoint, "keys": {
        "p256dh": URL_SAFE_NO_PAD.encode(point.as_bytes()),
        "auth": URL_SAFE_NO_PAD.encode(auth),
    }});
    (secret, auth, sub)
}

/// Waits until the stub holds `n` requests under `prefix` (or fails).
async fn pushes(
    log: &std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    prefix: &str,
    n: usize,
) -> Vec<Received> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got: Vec<Received> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} pushes to {prefix} arrived",
            got.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pushes_go_encrypted_and_signed_to_members_without_a_socket() {
    use serde_json::{json, Value};
    let (service, log) = push_service().await;
    let app = spawn_with(|a| a.push_allow_private = true).await;
    let key = public_key(&app).await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let endpoint = format!("{service}/push/bob");
    let (secret, auth, sub) = browser(&endpoint);
    let (status, body) = app.post("/push/subscriptions", &bob, sub).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Bob has no socket: one push, which only his browser can read.
    let started = std::time::Instant::now();
    app.send(&ana, chat, "hello Bob").await;
    let got = pushes(&log, "/push/bob", 1).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "within 2 s of the commit"
    );
    let push = &got[0];
    let payload = open_push(push, &secret, &auth);
    assert_eq!(payload["chatId"], chat);
    assert_eq!(payload["chatName"], "Ana");
    assert_eq!(payload["senderName"], "Ana");
    assert_eq!(payload["body"], "hello Bob");
    assert_eq!(payload["count"], 1);
    assert_eq!(
        payload["tag"],
        format!("chat-{chat}"),
        "one notification per chat"
    );
    let h = &push.headers;
    assert_eq!(h["content-encoding"], "aes128gcm");
    assert_eq!(h["ttl"], "86400");
    assert_eq!(h["urgency"], "high", "1-on-1");
    assert_eq!(h["topic"], format!("chat-{chat}"));
    // VAPID (RFC 8292): `vapid t=<JWT>, k=<the key of GET /push/key>`.
    let vapid = h["authorization"].to_str().unwrap();
    let t = vapid
        .split("t=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim();
    let k = vapid
        .split("k=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim();
    assert_eq!(k, key);
    let point = URL_SAFE_NO_PAD.decode(&key).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[service.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(t, &decoding, &validation)
        .expect("signed with the VAPID key, for the endpoint's origin")
        .claims;
    assert_eq!(claims["sub"], "mailto:natter@localhost");
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        exp > now_secs() && exp <= now_secs() + 24 * 3600 + 60,
        "exp within 24 h: {claims}"
    );

    // The sender never; a member with a socket open never.
    let mut bob_ws = app.ws(&bob).await;
    app.send(&ana, chat, "you are here").await;
    bob_ws.expect_event("message:new").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        pushes(&log, "/push/bob", 1).await.len(),
        1,
        "no push to a connected member"
    );

    // Muted: none either.
    let (status, _) = app
        .patch(
            &format!("/chat/{chat}/settings"),
            &bob,
            json!({"mutedUntil": now_secs() * 1000 + 3_600_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    bob_ws.close().await;
    // On one node a closed socket counts at once; another node learns it
    // when the closing node's presence grace (2 s) ends.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    app.send(&ana, chat, "muted").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        pushes(&log, "/push/bob", 1).await.len(),
        1,
        "no push for a muted chat"
    );
    let (status, _) = app
        .patch(
            &format!("/chat/{chat}/settings"),
            &bob,
            json!({"mutedUntil": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.send(&ana, chat, "unmuted").await;
    let got = pushes(&log, "/push/bob", 2).await;
    let payload = open_push(&got[1], &secret, &auth);
    assert_eq!(payload["body"], "unmuted");
    assert_eq!(payload["count"], 4, "every unread message of the chat");
}

#[tokio::test]
async fn a_gone_subscription_is_removed_and_a_dead_push_service_slows_nothing() {
    let (service, log) = push_service().await;
    let app = spawn_with(|a| a.push_allow_private = true).await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let chat = app.group(&ana, &[&bob, &carol], "G").await;
    let (_, _, gone) = browser(&format!("{service}/gone/bob"));
    let (_, _, slow) = browser(&format!("{service}/slow/carol"));
    assert_eq!(
        app.post("/push/subscriptions", &bob, gone).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post("/push/subscriptions", &carol, slow).await.0,
        StatusCode::CREATED
    );

    // Carol's push service never answers: sends stay fast.
    for i in 0..20 {
        let started = std::time::Instant::now();
        app.send(&ana, chat, &format!("m{i}")).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "a send waited for a push service"
        );
    }
    let got = pushes(&log, "/gone/bob", 1).await;
    assert_eq!(got[0].headers["urgency"], "normal", "a group");
    // 410: Bob's subscription is forgotten.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app
        .query_i64(&format!(
            "SELECT COUNT(*) FROM push_subscriptions WHERE user_id = {}",
            bob.id
        ))
        .await
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the gone subscription stayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!pushes(&log, "/slow/carol", 1).await.is_empty());
}

#[tokio::test]
async fn the_app_ships_a_manifest_and_a_service_worker() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/manifest.webmanifest", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/manifest+json");
    let manifest: serde_json::Value = r.json().await.unwrap();
    assert_eq!(manifest["display"], "standalone");
    for icon in manifest["icons"].as_array().unwrap() {
        let r = app
            .client
            .get(format!("{}/{}", app.base, icon["src"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{icon}");
        let img = image::load_from_memory(&r.bytes().await.unwrap()).expect("a PNG");
        let side = icon["sizes"].as_str().unwrap().split('x').next().unwrap();
        assert_eq!(img.width().to_string(), side, "{icon}");
    }
    let r = app
        .client
        .get(format!("{}/sw.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["cache-control"],
        "no-cache",
        "a new version is seen at once"
    );
    // /push/* is API: an unknown path there is a JSON 404, not the web app.
    let (status, body) = app
        .call(reqwest::Method::GET, "/push/nope", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}
