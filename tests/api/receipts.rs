//! Delivery receipts (issue 13, bug 2): a message is DELIVERED to a member
//! once it reached any of their devices — a socket, `/sync`, history, or the
//! chat list's `lastMessage` — and the sender hears about it.

use serde_json::Value;

use crate::helpers::*;

/// The status Ana sees for her message `id` in `chat`.
async fn status_for_sender(app: &TestApp, sender: &TestUser, chat: i64, id: i64) -> String {
    let (_, page) = app
        .get(&format!("/chat/{chat}/messages?limit=50"), sender)
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .map(|m| m["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Waits until Ana's socket hears that `id` is DELIVERED.
async fn expect_delivered(ws: &mut WsClient, id: i64) {
    let got = ws
        .collect_until(
            "message:status",
            |s| s["messageId"] == id && s["status"] == "DELIVERED",
            std::time::Duration::ZERO,
        )
        .await;
    assert!(
        got.iter()
            .any(|s| s["messageId"] == id && s["status"] == "DELIVERED"),
        "no DELIVERED status for {id}: {got:?}"
    );
}

#[tokio::test]
async fn the_chat_list_delivers_its_last_message() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let cara = app.register("Cara").await;
    let chat = app.direct_chat(&ana, &cara).await;
    let mut ana_ws = app.ws(&ana).await;
    // Cara is offline: nothing reaches her
    let id = app.send(&ana, chat, "are you coming?").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(status_for_sender(&app, &ana, chat, id).await, "SENT");

    // she opens the app: the chat list shows the message with a badge
    let (_, list) = app.get("/chat", &cara).await;
    let item = &list["items"][0];
    assert_eq!(item["lastMessage"]["id"], id);
    assert_eq!(item["unreadCount"], 1);
    // ... so it reached her device: Ana gets the second tick at once
    expect_delivered(&mut ana_ws, id).await;
    assert_eq!(status_for_sender(&app, &ana, chat, id).await, "DELIVERED");

    // the same through GET /chat/:id
    let id2 = app.send(&ana, chat, "hello?").await["id"].as_i64().unwrap();
    let (_, one) = app.get(&format!("/chat/{chat}"), &cara).await;
    assert_eq!(one["lastMessage"]["id"], id2);
    expect_delivered(&mut ana_ws, id2).await;
    assert_eq!(status_for_sender(&app, &ana, chat, id2).await, "DELIVERED");
}

#[tokio::test]
async fn sync_and_history_deliver_what_they_return() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let cara = app.register("Cara").await;
    let chat = app.direct_chat(&ana, &cara).await;
    let cara_ws = app.ws(&cara).await;
    let cursor = cara_ws.cursor;
    cara_ws.close().await;
    let mut ana_ws = app.ws(&ana).await;

    // /sync catch-up after reconnecting
    let id = app.send(&ana, chat, "one").await["id"].as_i64().unwrap();
    assert_eq!(status_for_sender(&app, &ana, chat, id).await, "SENT");
    let (_, page) = app.get(&format!("/sync?after={cursor}"), &cara).await;
    let items: &Vec<Value> = page["items"].as_array().unwrap();
    assert!(items
        .iter()
        .any(|i| i["event"] == "message:new" && i["data"]["id"] == id));
    expect_delivered(&mut ana_ws, id).await;
    assert_eq!(status_for_sender(&app, &ana, chat, id).await, "DELIVERED");

    // history
    let id2 = app.send(&ana, chat, "two").await["id"].as_i64().unwrap();
    let (_, h) = app
        .get(&format!("/chat/{chat}/messages?limit=10"), &cara)
        .await;
    assert_eq!(h["items"].as_array().unwrap().last().unwrap()["id"], id2);
    expect_delivered(&mut ana_ws, id2).await;
    assert_eq!(status_for_sender(&app, &ana, chat, id2).await, "DELIVERED");
}
