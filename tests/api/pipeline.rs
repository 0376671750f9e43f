//! Pipelined sends on one connection (`/ws` and `/socket.io/`): frames sent
//! back to back without waiting for acks are applied in the order sent (ids
//! ascending), answered in that order, stored exactly once; a retried
//! `clientId` right behind its original is one message; an invalid frame in
//! the middle gets its error answer in its place.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::*;

/// More than a connection's in-flight bound (64): the reader must pause,
/// not refuse.
const SENDS: u64 = 200;

/// Every message id of `chat`, oldest first.
async fn stored_ids(app: &TestApp, user: &TestUser, chat: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut after = 0;
    for _ in 0..50 {
        let (status, page) = app
            .get(
                &format!("/chat/{chat}/messages?after={after}&limit=100"),
                user,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        for m in items {
            let id = m["id"].as_i64().expect("id");
            after = after.max(id);
            ids.push(id);
        }
        if !page["hasMore"].as_bool().unwrap_or(false) {
            ids.sort_unstable();
            return ids;
        }
    }
    panic!("too many pages");
}

/// Reads `/ws` frames until `n` answers (acks or errors carrying `ack`, and
/// error frames without one) came; returns them in arrival order.
async fn answers(ws: &mut WsClient, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = ws
            .next_frame_within(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("only {} of {n} answers came", got.len()));
        if frame["event"] == "ack" || frame["event"] == "error" {
            got.push(frame);
        }
    }
    got
}

type Sio =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next Socket.IO text packet; Engine.IO pings are answered.
async fn next_text(sio: &mut Sio) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), sio.next())
            .await
            .expect("a packet in time")
            .expect("socket open")
            .expect("socket ok");
        if let WsMessage::Text(t) = msg {
            let t = t.to_string();
            if t == "2" {
                sio.send(WsMessage::Text("3".into())).await.expect("pong");
                continue;
            }
            return t;
        }
    }
}

fn send_frame(chat: i64, i: u64) -> String {
    json!({
        "event": "message:send",
        "data": {"chatId": chat, "messageType": "TEXT", "content": format!("m{i}"), "clientId": format!("c{i}")},
        "ack": i,
    })
    .to_string()
}

#[tokio::test]
async fn pipelined_ws_sends_keep_their_order_and_are_stored_once() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;

    for i in 1..=SENDS {
        ws.send_text(&send_frame(chat, i)).await;
    }
    let got = answers(&mut ws, SENDS as usize).await;
    let mut ids = Vec::new();
    for (i, frame) in got.iter().enumerate() {
        assert_eq!(frame["event"], "ack", "{frame}");
        assert_eq!(
            frame["ack"].as_u64(),
            Some(i as u64 + 1),
            "acks out of order"
        );
        assert_eq!(frame["data"]["content"], format!("m{}", i + 1), "{frame}");
        ids.push(frame["data"]["id"].as_i64().expect("id"));
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids do not follow the send order: {ids:?}"
    );
    assert_eq!(stored_ids(&app, &bob, chat).await, ids);
}

#[tokio::test]
async fn a_retry_right_behind_its_original_is_one_message() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;

    // Twice the same clientId back to back (same group commit), then a
    // different one.
    let same = |ack: u64| {
        json!({
            "event": "message:send",
            "data": {"chatId": chat, "messageType": "TEXT", "content": "once", "clientId": "dup-1"},
            "ack": ack,
        })
        .to_string()
    };
    ws.send_text(&same(1)).await;
    ws.send_text(&same(2)).await;
    ws.send_text(&send_frame(chat, 3)).await;
    let got = answers(&mut ws, 3).await;
    let acks: Vec<u64> = got.iter().map(|f| f["ack"].as_u64().unwrap()).collect();
    assert_eq!(acks, vec![1, 2, 3], "{got:?}");
    assert!(got.iter().all(|f| f["event"] == "ack"), "{got:?}");
    let first = got[0]["data"]["id"].as_i64().unwrap();
    assert_eq!(got[1]["data"]["id"].as_i64(), Some(first), "{got:?}");
    let third = got[2]["data"]["id"].as_i64().unwrap();
    assert!(third > first);
    assert_eq!(stored_ids(&app, &bob, chat).await, vec![first, third]);
}

#[tokio::test]
async fn an_invalid_frame_mid_pipeline_is_answered_in_its_place() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;

    ws.send_text(&send_frame(chat, 1)).await;
    // A send that fails validation: its error carries its ack.
    ws.send_text(
        &json!({"event": "message:send", "data": {"chatId": chat, "messageType": "TEXT", "content": "  "}, "ack": 2})
            .to_string(),
    )
    .await;
    ws.send_text(&send_frame(chat, 3)).await;
    // Not JSON: an error without an ack, still in its place.
    ws.send_text("not json").await;
    ws.send_text(&send_frame(chat, 5)).await;
    let got = answers(&mut ws, 5).await;
    let shape: Vec<(String, Option<u64>)> = got
        .iter()
        .map(|f| (f["event"].as_str().unwrap().to_string(), f["ack"].as_u64()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("ack".into(), Some(1)),
            ("error".into(), Some(2)),
            ("ack".into(), Some(3)),
            ("error".into(), None),
            ("ack".into(), Some(5)),
        ],
        "{got:?}"
    );
    assert_eq!(got[1]["data"]["field"], "content", "{}", got[1]);
    let ids: Vec<i64> = [0, 2, 4]
        .iter()
        .map(|&i| got[i]["data"]["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(stored_ids(&app, &bob, chat).await, ids);
}

#[tokio::test]
async fn pipelined_socketio_sends_keep_their_order_and_are_stored_once() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;

    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        app.node_addr
    );
    let (mut sio, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("socket.io connect");
    let open = next_text(&mut sio).await;
    assert!(open.starts_with("0{"), "{open}");
    let auth = json!({"token": alice.token});
    sio.send(WsMessage::Text(format!("40{auth}").into()))
        .await
        .unwrap();
    loop {
        let t = next_text(&mut sio).await;
        assert!(!t.starts_with("44"), "connect_error: {t}");
        if t.starts_with(r#"42["ready""#) {
            break;
        }
    }
    for i in 1..=SENDS {
        let data = json!({"chatId": chat, "messageType": "TEXT", "content": format!("m{i}"), "clientId": format!("c{i}")});
        let packet = format!("42{i}{}", json!(["message:send", data]));
        sio.send(WsMessage::Text(packet.into())).await.unwrap();
    }
    let mut ids = Vec::new();
    let mut expected = 1u64;
    while expected <= SENDS {
        let t = next_text(&mut sio).await;
        let Some(rest) = t.strip_prefix("43") else {
            assert!(!t.starts_with(r#"42["error""#), "{t}");
            continue;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (ack, body) = rest.split_at(digits);
        assert_eq!(ack.parse::<u64>().unwrap(), expected, "acks out of order");
        let body: Value = serde_json::from_str(body).expect("ack json");
        assert_eq!(body[0]["content"], format!("m{expected}"), "{body}");
        ids.push(body[0]["id"].as_i64().expect("id"));
        expected += 1;
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids do not follow the send order: {ids:?}"
    );
    assert_eq!(stored_ids(&app, &bob, chat).await, ids);
}
