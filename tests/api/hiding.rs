//! Delete for me and clear chat (issue 13, item 13): gone for the caller
//! only, on every device, from history, `/sync`, the chat list and the
//! unread count; everyone else keeps seeing it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const QUIET: Duration = Duration::from_millis(400);

async fn history_ids(app: &TestApp, user: &TestUser, chat: i64) -> Vec<i64> {
    let (status, page) = app
        .get(&format!("/chat/{chat}/messages?limit=200"), user)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

/// The caller's chat in `GET /chat`.
async fn listed(app: &TestApp, user: &TestUser, chat: i64) -> Value {
    let (_, list) = app.get("/chat", user).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == chat)
        .cloned()
        .unwrap_or_else(|| panic!("chat {chat} not listed: {list}"))
}

/// Message events `/sync` replays after `cursor`: (event, id).
async fn synced(app: &TestApp, user: &TestUser, cursor: i64) -> Vec<(String, Value)> {
    let (status, page) = app.get(&format!("/sync?after={cursor}"), user).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["event"].as_str().unwrap().to_string(), i["data"].clone()))
        .collect()
}

/// The same user signed in again (another device).
async fn login_again(app: &TestApp, user: &TestUser) -> TestUser {
    let (status, body) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": user.email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    TestUser {
        token: body["token"].as_str().unwrap().to_string(),
        ..user.clone()
    }
}

fn id(m: &Value) -> i64 {
    m["id"].as_i64().unwrap()
}

#[tokio::test]
async fn delete_for_me_hides_a_message_for_the_caller_only() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let mut phone = app.ws(&ana).await;
    let cursor = phone.cursor;
    let mut laptop = app.ws(&ana).await;
    let mut bob_ws = app.ws(&bob).await;
    let m1 = id(&app.send(&bob, chat, "one").await);
    let m2 = id(&app.send(&bob, chat, "two").await);
    assert_eq!(listed(&app, &ana, chat).await["unreadCount"], 2);

    let path = format!("/chat/{chat}/messages/{m2}?for=me");
    let (status, body) = app.delete(&path, &ana).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for ws in [&mut phone, &mut laptop] {
        let ev = ws.expect_event("message:hidden").await;
        assert_eq!(ev, json!({"chatId": chat, "messageId": m2}));
    }
    bob_ws.expect_no_event("message:hidden", QUIET).await;

    // gone for Ana: history, chat list, unread count, /sync, another login
    assert_eq!(history_ids(&app, &ana, chat).await, [m1]);
    let item = listed(&app, &ana, chat).await;
    assert_eq!(item["lastMessage"]["id"], m1);
    assert_eq!(item["unreadCount"], 1);
    let events = synced(&app, &ana, cursor).await;
    let news: Vec<&Value> = events
        .iter()
        .filter(|(e, _)| e == "message:new")
        .map(|(_, d)| &d["id"])
        .collect();
    assert_eq!(news, [&json!(m1)]);
    assert!(events.contains(&(
        "message:hidden".to_string(),
        json!({"chatId": chat, "messageId": m2})
    )));
    let tablet = login_again(&app, &ana).await;
    assert_eq!(history_ids(&app, &tablet, chat).await, [m1]);
    // ... and not for Bob
    assert_eq!(history_ids(&app, &bob, chat).await, [m1, m2]);
    assert_eq!(listed(&app, &bob, chat).await["lastMessage"]["id"], m2);

    // later changes to it are not pushed to Ana
    let (status, _) = app
        .patch(
            &format!("/chat/{chat}/messages/{m2}"),
            &bob,
            json!({"content": "two!"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bob_ws.expect_event("message:updated").await["id"], m2);
    phone.expect_no_event("message:updated", QUIET).await;
    assert!(!synced(&app, &ana, cursor)
        .await
        .iter()
        .any(|(e, d)| e == "message:updated" && d["id"] == m2));

    // twice is fine; her own message too; all gone → no lastMessage
    assert_eq!(app.delete(&path, &ana).await.0, StatusCode::NO_CONTENT);
    let mine = id(&app.send(&ana, chat, "mine").await);
    for m in [m1, mine] {
        let p = format!("/chat/{chat}/messages/{m}?for=me");
        assert_eq!(app.delete(&p, &ana).await.0, StatusCode::NO_CONTENT);
    }
    assert!(history_ids(&app, &ana, chat).await.is_empty());
    let item = listed(&app, &ana, chat).await;
    assert!(item["lastMessage"].is_null(), "{item}");
    assert_eq!(item["unreadCount"], 0);
    assert_eq!(history_ids(&app, &bob, chat).await, [m1, m2, mine]);
}

#[tokio::test]
async fn delete_for_me_is_checked() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.group(&ana, &[&bob], "Trip").await;
    let other = app.direct_chat(&ana, &eve).await;
    let m = id(&app.send(&bob, chat, "hi").await);
    let elsewhere = id(&app.send(&eve, other, "psst").await);
    // outsiders and other chats' ids: 404
    let path = format!("/chat/{chat}/messages/{m}?for=me");
    assert_eq!(app.delete(&path, &eve).await.0, StatusCode::NOT_FOUND);
    let wrong = format!("/chat/{chat}/messages/{elsewhere}?for=me");
    assert_eq!(app.delete(&wrong, &ana).await.0, StatusCode::NOT_FOUND);
    let (status, body) = app
        .delete(&format!("/chat/{chat}/messages/{m}?for=nobody"), &ana)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "for");
    // a group note can be deleted for me (not for everyone)
    let note = history_ids(&app, &bob, chat).await[0];
    let p = format!("/chat/{chat}/messages/{note}?for=me");
    assert_eq!(app.delete(&p, &bob).await.0, StatusCode::NO_CONTENT);
    assert_eq!(history_ids(&app, &bob, chat).await, [m]);
    // without `for` (or for=everyone) it is today's delete for everyone
    let (status, tomb) = app
        .delete(&format!("/chat/{chat}/messages/{m}?for=everyone"), &bob)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tomb["isDeleted"], true);
}

#[tokio::test]
async fn clear_chat_empties_it_for_the_caller_only() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let mut phone = app.ws(&ana).await;
    let cursor = phone.cursor;
    let mut bob_ws = app.ws(&bob).await;
    let m1 = id(&app.send(&bob, chat, "one").await);
    let m2 = id(&app.send(&bob, chat, "two").await);

    let (status, body) = app
        .post(&format!("/chat/{chat}/clear"), &ana, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        phone.expect_event("chat:cleared").await,
        json!({"chatId": chat, "upToMessageId": m2})
    );
    bob_ws.expect_no_event("chat:cleared", QUIET).await;

    // the chat stays listed, empty, nothing unread — on every device
    assert!(history_ids(&app, &ana, chat).await.is_empty());
    let item = listed(&app, &ana, chat).await;
    assert!(item["lastMessage"].is_null(), "{item}");
    assert_eq!(item["unreadCount"], 0);
    let tablet = login_again(&app, &ana).await;
    assert!(history_ids(&app, &tablet, chat).await.is_empty());
    let (_, one) = app.get(&format!("/chat/{chat}"), &tablet).await;
    assert!(one["lastMessage"].is_null());
    let events = synced(&app, &ana, cursor).await;
    assert!(
        !events.iter().any(|(e, _)| e == "message:new"),
        "{events:?}"
    );
    assert!(events.contains(&(
        "chat:cleared".to_string(),
        json!({"chatId": chat, "upToMessageId": m2})
    )));
    // Bob keeps everything
    assert_eq!(history_ids(&app, &bob, chat).await, [m1, m2]);

    // something new shows up as usual
    let m3 = id(&app.send(&bob, chat, "three").await);
    assert_eq!(history_ids(&app, &ana, chat).await, [m3]);
    let item = listed(&app, &ana, chat).await;
    assert_eq!(item["lastMessage"]["id"], m3);
    assert_eq!(item["unreadCount"], 1);

    // outsiders: 404
    let (status, _) = app
        .post(&format!("/chat/{chat}/clear"), &eve, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `--delete-window`: delete for everyone only within the window after
/// sending, for the sender and group admins alike; delete for me always.
#[tokio::test]
async fn delete_for_everyone_respects_the_delete_window() {
    // a window long enough for any slow machine: deleting works
    let app = spawn_with(|a| a.delete_window = 3600).await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.group(&ana, &[&bob], "Trip").await;
    let m = id(&app.send(&bob, chat, "oops").await);
    let (status, tomb) = app
        .delete(&format!("/chat/{chat}/messages/{m}"), &bob)
        .await;
    assert_eq!(status, StatusCode::OK, "{tomb}");

    // a one-second window, passed
    let app = spawn_with(|a| a.delete_window = 1).await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.group(&ana, &[&bob], "Trip").await;
    let m = id(&app.send(&bob, chat, "oops").await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let path = format!("/chat/{chat}/messages/{m}");
    for who in [&bob, &ana] {
        let (status, body) = app.delete(&path, who).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "delete_window_passed", "{body}");
    }
    assert_eq!(history_ids(&app, &bob, chat).await.last(), Some(&m));
    let (status, _) = app.delete(&format!("{path}?for=me"), &bob).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// A database written by the previous release (schema version 1) opens,
/// migrates, and its chats work with everything above.
#[tokio::test]
async fn a_version_1_database_migrates_and_works() {
    if is_postgres() {
        return; // an SQLite file of the previous release; PostgreSQL starts at the current schema
    }
    let dir = tempfile::tempdir().unwrap();
    let slots = natter::auth::HashSlots::default();
    let hash = natter::auth::hash_password(&slots, "correct horse".into())
        .await
        .unwrap();
    let db = rusqlite::Connection::open(dir.path().join("natter.db")).unwrap();
    db.execute_batch(include_str!("../fixtures/schema_v1.sql"))
        .unwrap();
    for (name, email) in [("Ana", "ana@old.example"), ("Bob", "bob@old.example")] {
        db.execute(
            "INSERT INTO users (email, email_norm, name, password_hash, created_at)
             VALUES (?1, ?1, ?2, ?3, 1)",
            rusqlite::params![email, name, hash],
        )
        .unwrap();
    }
    db.execute_batch(
        "INSERT INTO chats (name, is_group, created_at, updated_at, last_message_id, last_activity)
             VALUES ('Old group', 1, 1, 1, 2, 2);
         INSERT INTO chat_participants (chat_id, user_id, is_admin, joined_at) VALUES (1, 1, 1, 1), (1, 2, 0, 1);
         INSERT INTO messages (chat_id, sender_id, message_type, content, created_at, updated_at)
             VALUES (1, 1, 'TEXT', 'old one', 1, 1), (1, 2, 'TEXT', 'old two', 2, 2);",
    )
    .unwrap();
    drop(db);
    let app = spawn_in(dir, |_| {}).await;
    let login = |email: &'static str| {
        app.call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": email, "password": "correct horse"})),
        )
    };
    let (status, body) = login("ana@old.example").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ana = TestUser {
        id: body["user"]["id"].as_i64().unwrap(),
        token: body["token"].as_str().unwrap().to_string(),
        email: "ana@old.example".into(),
        name: "Ana".into(),
    };
    let item = listed(&app, &ana, 1).await;
    assert_eq!(item["lastMessage"]["content"], "old two");
    assert!(item["lastMessage"]["system"].is_null());
    assert_eq!(item["formerParticipants"], json!([]));
    assert_eq!(history_ids(&app, &ana, 1).await, [1, 2]);
    assert_eq!(
        app.delete("/chat/1/messages/2?for=me", &ana).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(history_ids(&app, &ana, 1).await, [1]);
    let (status, _) = app.patch("/chat/1", &ana, json!({"name": "New"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed(&app, &ana, 1).await["lastMessage"]["content"],
        "Ana changed the group name to \"New\""
    );
    assert_eq!(
        app.post("/chat/1/clear", &ana, json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(history_ids(&app, &ana, 1).await.is_empty());
}

/// `chat:updated` carries each member's own `lastMessage`: not one they
/// cleared or deleted for themselves.
#[tokio::test]
async fn chat_events_carry_each_members_own_last_message() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.group(&ana, &[&bob], "Trip").await;
    let m = id(&app.send(&ana, chat, "hello").await);
    let (status, _) = app
        .post(&format!("/chat/{chat}/clear"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut ana_ws = app.ws(&ana).await;
    let mut bob_ws = app.ws(&bob).await;
    // the same name again: chat:updated without a new note
    let (status, _) = app
        .patch(&format!("/chat/{chat}"), &ana, json!({"name": "Trip"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ana_ws.expect_event("chat:updated").await["lastMessage"]["id"],
        m
    );
    let bobs = bob_ws.expect_event("chat:updated").await;
    assert!(bobs["lastMessage"].is_null(), "{bobs}");
}
