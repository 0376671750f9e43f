//! Avatars (issue 13, item 12): an upload set as a user's `avatarUrl` or a
//! group's `groupAvatar` is readable by every signed-in user; chat files stay
//! private; only the caller's own image uploads can become avatars.

use std::time::Duration;

use reqwest::multipart::Part;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn status_of(app: &TestApp, url: &str, user: &TestUser) -> StatusCode {
    app.client
        .get(format!("{}{}", app.base, url))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_profile_photo_is_visible_to_signed_in_users_chat_files_are_not() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let cara = app.register("Cara").await;
    let avatar = upload_image(&app, &ana).await;
    assert_eq!(status_of(&app, &avatar, &bob).await, StatusCode::NOT_FOUND);

    let (status, me) = app
        .patch("/auth/me", &ana, json!({"avatarUrl": avatar}))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["avatarUrl"], avatar);
    assert_eq!(status_of(&app, &avatar, &bob).await, StatusCode::OK);
    // the web app's <img> authenticates with the cookie
    let resp = app
        .client
        .get(format!("{}{}", app.base, avatar))
        .header("Cookie", format!("natter_token={}", bob.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    // signed out: still nothing
    let resp = app
        .client
        .get(format!("{}{}", app.base, avatar))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Ana's ordinary chat file stays private to the chat
    let chat = app.direct_chat(&ana, &cara).await;
    let photo = upload_image(&app, &ana).await;
    let (status, _) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &ana,
            json!({"messageType": "IMAGE", "fileUrl": photo}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&app, &photo, &cara).await, StatusCode::OK);
    assert_eq!(status_of(&app, &photo, &bob).await, StatusCode::NOT_FOUND);

    // null clears
    let (status, me) = app
        .patch("/auth/me", &ana, json!({"avatarUrl": null}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(me["avatarUrl"].is_null());
}

#[tokio::test]
async fn only_your_own_image_uploads_become_avatars() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let bobs = upload_image(&app, &bob).await;
    let (_, text) = upload_part(
        &app,
        &ana,
        Part::bytes(b"hello".to_vec()).file_name("a.txt"),
    )
    .await;
    for url in [
        json!(bobs),
        json!("https://x.test/a.png"),
        json!("/uploads/chat/nope.png"),
        text["fileUrl"].clone(),
    ] {
        let (status, body) = app.patch("/auth/me", &ana, json!({"avatarUrl": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["field"], "avatarUrl", "{body}");
    }
    // Bob's upload did not become public through the attempt
    assert_eq!(status_of(&app, &bobs, &ana).await, StatusCode::NOT_FOUND);

    let (status, body) = app
        .post(
            "/chat",
            &ana,
            json!({"participantIds": [bob.id], "isGroup": true, "name": "G", "groupAvatar": bobs}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "groupAvatar");
}

#[tokio::test]
async fn a_group_photo_is_visible_to_signed_in_users_and_survives_the_sweep() {
    let app = spawn_with(|a| a.sweep_interval = 1).await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let dan = app.register("Dan").await;
    let first = upload_image(&app, &ana).await;
    let (status, chat) = app
        .post(
            "/chat",
            &ana,
            json!({"participantIds": [bob.id], "isGroup": true, "name": "Trip", "groupAvatar": first}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    assert_eq!(chat["groupAvatar"], first);
    assert_eq!(status_of(&app, &first, &dan).await, StatusCode::OK);

    let second = upload_image(&app, &ana).await;
    let id = chat["id"].as_i64().unwrap();
    let (status, chat) = app
        .patch(&format!("/chat/{id}"), &ana, json!({"groupAvatar": second}))
        .await;
    assert_eq!(status, StatusCode::OK, "{chat}");
    assert_eq!(status_of(&app, &second, &dan).await, StatusCode::OK);

    // avatars are never sent in a message, yet they are not unsent uploads:
    // age every upload, and wait until the sweep removed an unsent one
    let unsent = upload_image(&app, &ana).await;
    app.exec_sql(&format!(
        "UPDATE uploads SET created_at = {}",
        now_secs() * 1000 - 3 * 86_400_000
    ))
    .await;
    for _ in 0..100 {
        if status_of(&app, &unsent, &ana).await == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(&app, &unsent, &ana).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, &second, &dan).await, StatusCode::OK);
}
