//! Group notes (issue 13, item 10): "Ana added Cara", "Bob left", ... as
//! `SYSTEM` messages in history, `/sync`, `message:new` and the chat list;
//! never unread, never sent, edited or deleted for everyone by clients.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn history(app: &TestApp, user: &TestUser, chat: i64) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/chat/{chat}/messages?limit=200"), user)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn notes(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter(|m| m["messageType"] == "SYSTEM")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn group_changes_write_notes_everyone_sees() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let cara = app.register("Cara").await;
    let dan = app.register("Dan").await;
    let chat = app.group(&ana, &[&bob, &cara], "Trip").await;
    let (_, created) = app.get(&format!("/chat/{chat}"), &cara).await;
    let note = &created["lastMessage"];
    assert_eq!(note["messageType"], "SYSTEM");
    assert_eq!(note["senderId"], ana.id);
    assert_eq!(note["content"], "Ana created the group \"Trip\"");
    assert_eq!(
        note["system"],
        json!({"action": "created", "actorId": ana.id, "userIds": [bob.id, cara.id], "name": "Trip"})
    );
    let sent = app.send(&bob, chat, "I can drive").await;
    assert!(sent["system"].is_null(), "{sent}");

    let mut cara_ws = app.ws(&cara).await;
    let cursor = cara_ws.cursor;
    let call = |r: (StatusCode, Value)| assert!(r.0.is_success(), "{r:?}");
    call(
        app.patch(&format!("/chat/{chat}"), &ana, json!({"name": "Beach"}))
            .await,
    );
    let photo = upload_image(&app, &ana).await;
    call(
        app.patch(
            &format!("/chat/{chat}"),
            &ana,
            json!({"groupAvatar": photo}),
        )
        .await,
    );
    let member = format!("/chat/{chat}/participants/{}", bob.id);
    call(app.patch(&member, &ana, json!({"isAdmin": true})).await);
    call(app.patch(&member, &ana, json!({"isAdmin": false})).await);
    call(
        app.post(
            &format!("/chat/{chat}/participants"),
            &ana,
            json!({"userIds": [dan.id]}),
        )
        .await,
    );
    call(app.delete(&member, &bob).await);
    let expected = [
        "Ana changed the group name to \"Beach\"",
        "Ana changed the group photo",
        "Ana made Bob an admin",
        "Ana removed Bob as admin",
        "Ana added Dan",
        "Bob left",
    ];
    let pushed = cara_ws
        .collect_until(
            "message:new",
            |m| m["content"] == "Bob left",
            std::time::Duration::from_millis(200),
        )
        .await;
    let pushed: Vec<&str> = pushed
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(pushed, expected);
    let all = history(&app, &cara, chat).await;
    let mut want = vec!["Ana created the group \"Trip\"".to_string()];
    want.extend(expected.iter().map(|s| s.to_string()));
    assert_eq!(notes(&all), want);
    let left = all.last().unwrap();
    assert_eq!(
        left["system"],
        json!({"action": "left", "actorId": bob.id, "userIds": [bob.id], "name": null})
    );
    let added = &all[all.len() - 2];
    assert_eq!(added["system"]["action"], "added");
    assert_eq!(added["system"]["userIds"], json!([dan.id]));

    // /sync replays them; the chat list shows the newest; never unread
    let (_, page) = app.get(&format!("/sync?after={cursor}"), &cara).await;
    let synced: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["event"] == "message:new")
        .map(|i| i["data"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(synced, expected);
    let (_, list) = app.get("/chat", &cara).await;
    assert_eq!(list["items"][0]["lastMessage"]["content"], "Bob left");
    assert_eq!(list["items"][0]["unreadCount"], 1, "Bob's message only");

    // Dan, added later, sees the notes from his join on (and the messages)
    let dans = history(&app, &dan, chat).await;
    assert_eq!(notes(&dans), ["Ana added Dan", "Bob left"]);
    assert!(dans.iter().any(|m| m["content"] == "I can drive"));
    let (_, list) = app.get("/chat", &dan).await;
    assert_eq!(list["items"][0]["unreadCount"], 0);

    // a removed member is told by chat:removed and loses the chat
    let mut dan_ws = app.ws(&dan).await;
    call(
        app.delete(&format!("/chat/{chat}/participants/{}", dan.id), &ana)
            .await,
    );
    assert_eq!(dan_ws.expect_event("chat:removed").await["chatId"], chat);
    let (status, _) = app.get(&format!("/chat/{chat}/messages"), &dan).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        notes(&history(&app, &cara, chat).await).last().unwrap(),
        "Ana removed Dan"
    );
}

#[tokio::test]
async fn notes_cannot_be_sent_edited_or_deleted_for_everyone() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.group(&ana, &[&bob], "Trip").await;
    let (status, body) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &ana,
            json!({"messageType": "SYSTEM", "content": "Bob left"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "messageType");
    let note = history(&app, &ana, chat).await[0]["id"].as_i64().unwrap();
    let path = format!("/chat/{chat}/messages/{note}");
    let (status, _) = app.patch(&path, &ana, json!({"content": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.delete(&path, &ana).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // a 1-on-1 has no notes
    let direct = app.direct_chat(&ana, &bob).await;
    assert!(history(&app, &ana, direct).await.is_empty());
}
