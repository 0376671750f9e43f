//! Accounts, tokens, configuration basics.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_answers_and_data_survives_a_restart() {
    let app = spawn_app().await;
    let (status, body) = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    app.send(&alice, chat, "before restart").await;
    let dir = app.stop().await;
    if !is_postgres() {
        assert!(dir.path().join("natter.db").exists());
    }

    let app = spawn_in(dir, |_| {}).await;
    // The kept JWT secret means the old token still works.
    let (status, body) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["content"], "before restart");
}

#[tokio::test]
async fn register_login_me_and_update() {
    let app = spawn_app().await;
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"email": "Carol@Example.com", "password": "password123", "name": "Carol"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["token"].as_str().unwrap().len() > 20);
    let user = &body["user"];
    for field in [
        "id",
        "email",
        "name",
        "avatarUrl",
        "online",
        "lastSeen",
        "createdAt",
    ] {
        assert!(user.get(field).is_some(), "user has {field}");
    }
    assert!(user.get("passwordHash").is_none() && user.get("password_hash").is_none());

    // email is unique case-insensitively
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"email": "carol@EXAMPLE.com", "password": "password123", "name": "C2"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");

    // login is case-insensitive on the email
    let (status, login) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "CAROL@example.com", "password": "password123"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let carol = TestUser {
        id: login["user"]["id"].as_i64().unwrap(),
        token: login["token"].as_str().unwrap().into(),
        email: "carol@example.com".into(),
        name: "Carol".into(),
    };
    let (status, me) = app.get("/auth/me", &carol).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["name"], "Carol");
    // /auth/me renews the HttpOnly upload cookie for the web app
    let resp = app
        .client
        .get(format!("{}/auth/me", app.base))
        .bearer_auth(&carol.token)
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with(&format!("natter_token={}", carol.token)),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let avatar = upload_image(&app, &carol).await;
    let (status, me) = app
        .patch(
            "/auth/me",
            &carol,
            json!({"name": "Caroline", "avatarUrl": avatar}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Caroline");
    assert_eq!(me["avatarUrl"], avatar);

    // password change: the new one works, the old one doesn't
    let (status, _) = app
        .patch("/auth/me", &carol, json!({"password": "new password 1"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let login = |password: &'static str| {
        app.call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "carol@example.com", "password": password})),
        )
    };
    assert_eq!(login("password123").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login("new password 1").await.0, StatusCode::OK);

    // validation of PATCH /auth/me
    let (status, body) = app.patch("/auth/me", &carol, json!({"name": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "name");
    let (status, _) = app
        .patch("/auth/me", &carol, json!({"password": "short"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn registration_validates_every_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "nope", "password": "password123", "name": "X"}),
            "email",
        ),
        (
            json!({"email": "a@b.c", "password": "short", "name": "X"}),
            "password",
        ),
        (
            json!({"email": "a@b.c", "password": "x".repeat(1025), "name": "X"}),
            "password",
        ),
        (
            json!({"email": "a@b.c", "password": "password123", "name": ""}),
            "name",
        ),
        (
            json!({"email": "a@b.c", "password": "password123", "name": "n".repeat(101)}),
            "name",
        ),
        (json!({"email": "a@b.c", "password": "password123"}), "name"),
        (
            json!({"email": 5, "password": "password123", "name": "X"}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let (status, resp) = app
            .call(Method::POST, "/auth/register", None, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {resp}");
        assert_eq!(resp["error"]["code"], "invalid_input");
        assert_eq!(resp["error"]["field"], field, "{resp}");
        assert!(resp["error"]["message"].as_str().unwrap().contains(field));
    }
    // exactly 1,024 characters is allowed; 100-character names are allowed
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(
                json!({"email": "long@b.c", "password": "é".repeat(1024), "name": "n".repeat(100)}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // malformed JSON is a 400, not a 500
    let resp = app
        .client
        .post(format!("{}/auth/register", app.base))
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn login_failures_share_one_message() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let (s1, unknown) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "nobody@x.io", "password": "whatever1"})),
        )
        .await;
    let (s2, wrong) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": alice.email, "password": "wrong pass"})),
        )
        .await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!(s2, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let secret = app.jwt_secret().await;
    let secret = secret.as_bytes();
    let now = now_secs();
    let good = sign_token(
        secret,
        json!({"sub": alice.id.to_string(), "iat": now, "exp": now + 600, "ver": 0}),
    );
    let mut tampered = alice.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let tokens = [
        (
            "expired",
            sign_token(
                secret,
                json!({"sub": alice.id.to_string(), "iat": now - 7200, "exp": now - 3600, "ver": 0}),
            ),
        ),
        (
            "other secret",
            sign_token(
                b"some-other-secret-of-32-bytes!!!",
                json!({"sub": alice.id.to_string(), "iat": now, "exp": now + 600, "ver": 0}),
            ),
        ),
        (
            "alg none",
            alg_none_token(
                json!({"sub": alice.id.to_string(), "iat": now, "exp": now + 600, "ver": 0}),
            ),
        ),
        (
            "no exp",
            sign_token(
                secret,
                json!({"sub": alice.id.to_string(), "iat": now, "ver": 0}),
            ),
        ),
        (
            "unknown user",
            sign_token(
                secret,
                json!({"sub": "999999", "iat": now, "exp": now + 600, "ver": 0}),
            ),
        ),
        ("tampered", tampered),
        ("garbage", "not-a-token".to_string()),
    ];
    for (what, token) in tokens {
        let (status, body) = app.call(Method::GET, "/auth/me", Some(&token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        // and on the WebSocket upgrade
        let url = format!("ws://{}/ws?token={}", app.addr, token);
        assert!(
            tokio_tungstenite::connect_async(url).await.is_err(),
            "{what} opened a socket"
        );
    }
    let (status, _) = app.call(Method::GET, "/auth/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.call(Method::GET, "/auth/me", Some(&good), None).await;
    assert_eq!(status, StatusCode::OK, "a correctly signed token works");
}

#[tokio::test]
async fn closed_registration_is_refused() {
    let app = spawn_with(|a| a.registration = natter::config::Registration::Closed).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"email": "a@b.c", "password": "password123", "name": "A"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
}

#[tokio::test]
async fn user_search_and_manual_status() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let _bob = app.register("Bobby").await;
    let (status, body) = app.get("/chat/users/search?q=BOB", &alice).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "Bobby");
    // the caller is excluded even when they match
    let (_, body) = app.get("/chat/users/search?q=alice", &alice).await;
    assert!(body["items"].as_array().unwrap().is_empty());
    // by email too; at most 20
    for i in 0..22 {
        app.register(&format!("Zed{i}")).await;
    }
    let (_, body) = app.get("/chat/users/search?q=zed", &alice).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 20);
    let (_, body) = app.get("/chat/users/search?q=%25", &alice).await;
    assert!(body["items"].as_array().unwrap().is_empty(), "% is literal");

    let (status, me) = app
        .post("/chat/status", &alice, json!({"online": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["online"], true);
    let (_, me) = app
        .post("/chat/status", &alice, json!({"online": false}))
        .await;
    assert_eq!(me["online"], false);
    assert!(me["lastSeen"].is_string());
    let (status, _) = app
        .post("/chat/status", &alice, json!({"online": "yes"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
