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
