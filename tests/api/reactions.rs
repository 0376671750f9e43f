//! Reactions (issue 19): `PUT`/`DELETE /chat/:chatId/messages/:messageId/reaction`,
//! `message:reaction` on `/ws`, Socket.IO and `/sync`, `message:react`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn react(
    app: &TestApp,
    user: &TestUser,
    chat: i64,
    msg: i64,
    emoji: &str,
) -> (StatusCode, Value) {
    app.call(
        Method::PUT,
        &format!("/chat/{chat}/messages/{msg}/reaction"),
        Some(&user.token),
        Some(json!({"emoji": emoji})),
    )
    .await
}

async fn unreact(app: &TestApp, user: &TestUser, chat: i64, msg: i64) -> (StatusCode, Value) {
    app.delete(&format!("/chat/{chat}/messages/{msg}/reaction"), user)
        .await
}

#[tokio::test]
async fn a_reaction_is_set_replaced_and_removed() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.group(&ana, &[&bob], "Trip").await;
    let sent = app.send(&ana, chat, "lunch?").await;
    assert_eq!(sent["reactions"], json!([]));
    assert_eq!(sent["isForwarded"], false);
    let m = sent["id"].as_i64().unwrap();

    let (s, body) = react(&app, &bob, chat, m, "👍").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["id"], m);
    assert_eq!(
        body["reactions"],
        json!([{"emoji": "👍", "count": 1, "userIds": [bob.id]}])
    );
    let (s, body) = react(&app, &ana, chat, m, "👍").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["reactions"],
        json!([{"emoji": "👍", "count": 2, "userIds": [bob.id, ana.id]}])
    );
    // Bob's new reaction replaces his 👍 (one per member).
    let (s, body) = react(&app, &bob, chat, m, "👨‍👩‍👧‍👦").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["reactions"],
        json!([
            {"emoji": "👍", "count": 1, "userIds": [ana.id]},
            {"emoji": "👨‍👩‍👧‍👦", "count": 1, "userIds": [bob.id]},
        ])
    );
    // History and the chat list carry them.
    let (_, page) = app.get(&format!("/chat/{chat}/messages"), &ana).await;
    let last = page["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["reactions"], body["reactions"]);
    let (_, c) = app.get(&format!("/chat/{chat}"), &ana).await;
    assert_eq!(c["lastMessage"]["reactions"], body["reactions"]);

    let (s, body) = unreact(&app, &ana, chat, m).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["reactions"],
        json!([{"emoji": "👨‍👩‍👧‍👦", "count": 1, "userIds": [bob.id]}])
    );
    // Removing a reaction that is not there: still 200.
    let (s, again) = unreact(&app, &ana, chat, m).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["reactions"], body["reactions"]);
    let (s, body) = unreact(&app, &bob, chat, m).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["reactions"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn only_one_emoji_is_accepted() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let m = app.send(&ana, chat, "hi").await["id"].as_i64().unwrap();
    for ok in ["👍🏽", "❤️", "🏳️‍🌈", "🇯🇵", "1️⃣", "🧑🏿‍💻"] {
        let (s, body) = react(&app, &bob, chat, m, ok).await;
        assert_eq!(s, StatusCode::OK, "{ok}: {body}");
        assert_eq!(body["reactions"][0]["emoji"], ok);
    }
    let long = "👍".repeat(9);
    for bad in ["", "a", "👍👍", "hi", "1", "<b>", "👍 x", long.as_str()] {
        let (s, body) = react(&app, &bob, chat, m, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input", "{body}");
        assert_eq!(body["error"]["field"], "emoji", "{body}");
    }
    let (s, body) = app
        .call(
            Method::PUT,
            &format!("/chat/{chat}/messages/{m}/reaction"),
            Some(&bob.token),
            Some(json!({"emoji": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn reactions_need_a_message_the_caller_sees() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let dave = app.register("Dave").await;
    let chat = app.group(&ana, &[&bob], "Trip").await;
    let other = app.direct_chat(&eve, &dave).await;
    let m = app.send(&ana, chat, "before dave").await["id"]
        .as_i64()
        .unwrap();
    let theirs = app.send(&eve, other, "private").await["id"]
        .as_i64()
        .unwrap();

    let (s, unknown) = react(&app, &bob, chat, 999_999, "👍").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{unknown}");
    // Not a member, a message of another chat: the same 404.
    let (s, body) = react(&app, &eve, chat, m, "👍").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body, unknown);
    let (s, body) = react(&app, &bob, chat, theirs, "👍").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body, unknown);
    let (s, body) = unreact(&app, &eve, chat, m).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body, unknown);

    // Sent before Dave joined: not his to react to.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (s, body) = app
        .post(
            &format!("/chat/{chat}/participants"),
            &ana,
            json!({"userIds": [dave.id]}),
        )
        .await;
    assert!(s.is_success(), "{body}");
    let (s, body) = react(&app, &dave, chat, m, "👍").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body, unknown);
    let after = app.send(&ana, chat, "after dave").await["id"]
        .as_i64()
        .unwrap();
    let (s, body) = react(&app, &dave, chat, after, "👍").await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Deleted: 409, and the tombstone keeps no reactions.
    let (s, _) = react(&app, &bob, chat, m, "😂").await;
    assert_eq!(s, StatusCode::OK);
    let (s, tomb) = app
        .delete(&format!("/chat/{chat}/messages/{m}"), &ana)
        .await;
    assert_eq!(s, StatusCode::OK, "{tomb}");
    assert_eq!(tomb["reactions"], json!([]));
    let (s, body) = react(&app, &bob, chat, m, "👍").await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (s, _) = unreact(&app, &bob, chat, m).await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn reaction_events_reach_members_only_and_sync_replays_them() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let m = app.send(&ana, chat, "hi").await["id"].as_i64().unwrap();
    let mut ana_ws = app.ws(&ana).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut eve_ws = app.ws(&eve).await;
    let cursor = ana_ws.cursor;

    // Over /ws, with an ack carrying the message.
    let reply = bob_ws
        .request(
            "message:react",
            json!({"chatId": chat, "messageId": m, "emoji": "🎉"}),
        )
        .await;
    assert_eq!(reply["event"], "ack", "{reply}");
    assert_eq!(reply["data"]["id"], m);
    assert_eq!(reply["data"]["reactions"][0]["userIds"], json!([bob.id]));
    let event = ana_ws.expect_event("message:reaction").await;
    assert_eq!(event["chatId"], chat);
    assert_eq!(event["messageId"], m);
    assert_eq!(event["userId"], bob.id);
    assert_eq!(event["emoji"], "🎉");
    let (s, _) = unreact(&app, &bob, chat, m).await;
    assert_eq!(s, StatusCode::OK);
    let event = ana_ws.expect_event("message:reaction").await;
    assert_eq!(event["emoji"], Value::Null);
    assert_eq!(event["userId"], bob.id);
    // Removing nothing sends nothing.
    unreact(&app, &bob, chat, m).await;
    ana_ws
        .expect_no_event("message:reaction", Duration::from_millis(300))
        .await;
    eve_ws
        .expect_no_event("message:reaction", Duration::from_millis(300))
        .await;

    // A bad frame is an error with the ack.
    let reply = bob_ws
        .request(
            "message:react",
            json!({"chatId": chat, "messageId": m, "emoji": "abc"}),
        )
        .await;
    assert_eq!(reply["event"], "error", "{reply}");
    assert_eq!(reply["data"]["field"], "emoji", "{reply}");

    let (s, page) = app.get(&format!("/sync?after={cursor}"), &ana).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let reactions: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["event"] == "message:reaction")
        .map(|i| i["data"].clone())
        .collect();
    assert_eq!(reactions.len(), 2, "{page}");
    assert_eq!(reactions[0]["emoji"], "🎉");
    assert_eq!(reactions[0]["userId"], bob.id);
    assert_eq!(reactions[1]["emoji"], Value::Null);
    let (_, page) = app.get(&format!("/sync?after={cursor}"), &eve).await;
    assert!(
        !page.to_string().contains("message:reaction"),
        "not a member: {page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn socketio_reacts_with_an_ack() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let m = app.send(&ana, chat, "hi").await["id"].as_i64().unwrap();
    let mut sio = crate::socketio::Polling::open(&app, None).await;
    sio.connect(json!({"token": bob.token})).await;
    sio.expect_event("ready").await;
    sio.send(&format!(
        r#"25["message:react",{{"chatId":{chat},"messageId":{m},"emoji":"👍"}}]"#
    ))
    .await;
    // The ack and the member's `message:reaction` event may come in either
    // order (the event is published once the write commits, the ack follows).
    let (mut ack, mut event) = (None, None);
    for _ in 0..20 {
        if ack.is_some() && event.is_some() {
            break;
        }
        let packet = sio.next().await;
        if let Some(rest) = packet.strip_prefix("35") {
            ack = Some(rest.to_string());
        } else if let Some(array) = packet.strip_prefix('2') {
            let array: Value = serde_json::from_str(array).expect("event json");
            if array[0] == "message:reaction" {
                event = Some(array[1].clone());
            }
        }
    }
    let ack: Value = serde_json::from_str(&ack.expect("ack 5")).unwrap();
    assert_eq!(ack[0]["reactions"][0]["emoji"], "👍", "{ack}");
    let event = event.expect("a message:reaction event");
    assert_eq!(event["emoji"], "👍");
    app.stop().await;
}
