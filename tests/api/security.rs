//! Abuse: rate limits, oversized input, slow clients, security headers,
//! secrets in logs.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

#[tokio::test]
async fn login_brute_force_gets_429_with_retry_after() {
    if is_cluster() {
        return; // rate limits are counted per node (README)
    }
    let app = spawn_with(|a| a.login_rate = 5).await;
    let victim = app.register("Victim").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let (status, _) = app
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"email": victim.email, "password": format!("guess {i}")})),
            )
            .await;
        statuses.push(status);
    }
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let resp = app
        .client
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"email": victim.email.to_uppercase(), "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the account is locked for a while, any case"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // another account from another... the same IP still has room
    let other = app.register("Other").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": other.email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn message_and_upload_floods_get_429() {
    if is_cluster() {
        return; // rate limits are counted per node (README)
    }
    let app = spawn_with(|a| {
        a.send_rate = 2;
        a.upload_rate = 2;
    })
    .await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut created = 0;
    let mut limited = 0;
    for i in 0..40 {
        let (status, body) = app
            .post(
                &format!("/chat/{chat}/messages"),
                &alice,
                json!({"messageType": "TEXT", "content": format!("{i}")}),
            )
            .await;
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                assert_eq!(body["error"]["code"], "rate_limited");
            }
            other => panic!("{other} {body}"),
        }
    }
    assert!(
        created >= 20 && limited > 0,
        "created {created}, limited {limited}"
    );
    // the same limit holds on the WebSocket: an error frame, the socket stays
    let mut ws = app.ws(&alice).await;
    let r = ws
        .request(
            "message:send",
            json!({"chatId": chat, "messageType": "TEXT", "content": "x"}),
        )
        .await;
    assert_eq!(r["event"], "error");
    assert_eq!(r["data"]["code"], "rate_limited");
    // bob is not affected by alice's flood
    app.send(&bob, chat, "fine").await;

    let mut up_limited = false;
    for _ in 0..5 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![1u8; 10]).file_name("a.bin"),
        );
        let resp = app
            .client
            .post(format!("{}/chat/upload", app.base))
            .bearer_auth(&alice.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            up_limited = true;
        }
    }
    assert!(up_limited);
}

#[tokio::test]
async fn oversized_bodies_and_id_lists_are_refused() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    // a multi-megabyte password never reaches the hash
    let resp = app
        .client
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"email": alice.email, "password": "x".repeat(3_000_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": alice.email, "password": "x".repeat(5000)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let big: Vec<i64> = (1..=5000).collect();
    let (status, body) = app
        .post(
            &format!("/chat/{chat}/read"),
            &bob,
            json!({"messageIds": big}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .post(
            "/chat",
            &alice,
            json!({"participantIds": big, "isGroup": true, "name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // huge headers are refused, the server stays up
    let resp = app
        .client
        .get(format!("{}/health", app.base))
        .header("X-Big", "y".repeat(200_000))
        .send()
        .await;
    assert!(resp.map(|r| r.status().is_client_error()).unwrap_or(true));
    assert_eq!(
        app.call(Method::GET, "/health", None, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off() {
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // trickle a header byte every second, never finishing the request
    let started = std::time::Instant::now();
    let mut cut = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if stream.write_all(b"X").await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(_)) => {
                cut = true; // an error response (408) then close
                break;
            }
            Err(_) => {}
        }
    }
    assert!(cut, "still connected after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(35));
    assert_eq!(
        app.call(Method::GET, "/health", None, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn security_headers_are_set() {
    let app = spawn_app().await;
    for path in ["/", "/health", "/chat"] {
        let resp = app
            .client
            .get(format!("{}{}", app.base, path))
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
    // CORS only for the configured origin
    let open = spawn_with(|a| a.frontend_url = Some("https://app.example.com".into())).await;
    let allowed = open
        .client
        .request(Method::OPTIONS, format!("{}/chat", open.base))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let denied = open
        .client
        .request(Method::OPTIONS, format!("{}/chat", open.base))
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        denied.headers()
    );
    let same = app
        .client
        .request(Method::OPTIONS, format!("{}/chat", app.base))
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        same.headers().get("access-control-allow-origin").is_none(),
        "no CORS without FRONTEND_URL"
    );
}

/// A known path with the wrong method answers 405 with the contract's error
/// envelope (axum's default is an empty body) and keeps `Allow`.
#[tokio::test]
async fn wrong_methods_get_405_with_the_error_envelope() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    for (method, path) in [
        (Method::GET, "/auth/login"),
        (Method::PUT, "/chat"),
        (Method::DELETE, "/chat/1"),
        (Method::POST, "/health"),
        (Method::GET, "/chat/upload"),
        (Method::POST, "/sync"),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{}{}", app.base, path))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(resp.headers().contains_key("allow"), "{method} {path}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
}

/// A non-numeric query value names the parameter as the field.
#[tokio::test]
async fn bad_query_values_name_their_parameter() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    for (path, field) in [
        ("/chat?limit=abc".to_string(), "limit"),
        ("/chat?page=x".to_string(), "page"),
        (format!("/chat/{chat}/messages?before=abc"), "before"),
        ("/sync?limit=1.5".to_string(), "limit"),
    ] {
        let (status, body) = app.get(&path, &alice).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
}

/// The seed's deployments often use a short `JWT_SECRET`; natter starts with
/// it (warning in the log) and signs with exactly that secret.
#[tokio::test]
async fn a_short_jwt_secret_is_accepted() {
    let app = spawn_with(|a| a.jwt_secret = Some("secret".into())).await;
    let alice = app.register("Alice").await;
    let (status, _) = app.get("/auth/me", &alice).await;
    assert_eq!(status, StatusCode::OK);
    let claims =
        json!({"sub": alice.id.to_string(), "iat": now_secs(), "exp": now_secs() + 600, "ver": 0});
    let own = sign_token(b"secret", claims.clone());
    let (status, _) = app.call(Method::GET, "/auth/me", Some(&own), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "signed with exactly the given secret"
    );
    let forged = sign_token(b"another secret", claims);
    let (status, _) = app.call(Method::GET, "/auth/me", Some(&forged), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
