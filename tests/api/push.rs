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
