//! The WebSocket hub: fan-out, acks, presence, typing, receipts, catch-up,
//! back-pressure and bad frames.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::*;

const QUIET: Duration = Duration::from_millis(400);

#[tokio::test]
async fn message_new_reaches_every_device_and_no_outsider() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut bob_phone = app.ws(&bob).await;
    let mut bob_laptop = app.ws(&bob).await;
    let mut eve_ws = app.ws(&eve).await;
    let mut alice_ws = app.ws(&alice).await;

    // REST send: both of bob's devices get it, without joining the chat
    let sent = app.send(&alice, chat, "hi bob").await;
    for ws in [&mut bob_phone, &mut bob_laptop] {
        let m = ws.expect_event("message:new").await;
        assert_eq!(m["id"], sent["id"]);
        assert_eq!(m["content"], "hi bob");
    }
    // WS send with ack: exactly one ack carrying the stored message
    let reply = alice_ws
        .request(
            "message:send",
            json!({"chatId": chat, "messageType": "TEXT", "content": "via ws", "clientId": "k1"}),
        )
        .await;
    assert_eq!(reply["event"], "ack", "{reply}");
    assert_eq!(reply["data"]["content"], "via ws");
    assert_eq!(reply["data"]["chatId"], chat);
    let id = reply["data"]["id"].clone();
    let again = alice_ws
        .request(
            "message:send",
            json!({"chatId": chat, "messageType": "TEXT", "content": "via ws", "clientId": "k1"}),
        )
        .await;
    assert_eq!(again["data"]["id"], id, "a retried clientId is stored once");
    let got = bob_phone
        .collect_until("message:new", |m| m["id"] == id, QUIET)
        .await;
    assert_eq!(got.len(), 1, "retry published nothing new: {got:?}");
    assert_eq!(got[0]["id"], id);
    let acks = alice_ws.collect_events("ack", QUIET).await;
    assert!(acks.is_empty(), "exactly one ack per request");
    let (_, history) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 2);

    // the outsider got nothing at all of this chat
    let frames = eve_ws.collect_events("message:new", QUIET).await;
    assert!(frames.is_empty());
    // and can't send into it or join it
    let r = eve_ws
        .request(
            "message:send",
            json!({"chatId": chat, "messageType": "TEXT", "content": "x"}),
        )
        .await;
    assert_eq!(r["event"], "error");
    assert_eq!(r["data"]["code"], "not_found");
    let r = eve_ws.request("chat:join", json!({"chatId": chat})).await;
    assert_eq!(r["data"]["code"], "not_found");
}

#[tokio::test]
async fn ready_frame_and_origin_check() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let ws = app.ws(&alice).await;
    assert!(ws.cursor >= 0);
    // a browser from another origin is refused; our own origin is fine
    let url = format!("ws://{}/ws?token={}", app.addr, alice.token);
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", format!("http://{}", app.addr).parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    // the token may also come in the Authorization header
    let mut req = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", alice.token).parse().unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    let req = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .unwrap();
    assert!(
        tokio_tungstenite::connect_async(req).await.is_err(),
        "no token, no socket"
    );
}

#[tokio::test]
async fn frontend_url_origin_is_allowed() {
    let app = spawn_with(|a| a.frontend_url = Some("http://localhost:3000".into())).await;
    let alice = app.register("Alice").await;
    let url = format!("ws://{}/ws?token={}", app.addr, alice.token);
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", "http://localhost:3000".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", "http://localhost:3001".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test]
async fn presence_follows_the_last_connection() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    app.direct_chat(&alice, &bob).await;
    let stranger = app.register("Stranger").await;
    let mut bob_ws = app.ws(&bob).await;
    let mut stranger_ws = app.ws(&stranger).await;

    let first = app.ws(&alice).await;
    let ev = bob_ws.expect_event("user:online").await;
    assert_eq!(ev["userId"], alice.id);
    assert_eq!(ev["online"], true);
    let (_, me) = app.get("/auth/me", &alice).await;
    assert_eq!(me["online"], true);

    let second = app.ws(&alice).await;
    first.close().await;
    bob_ws.expect_no_event("user:online", QUIET).await;
    let (_, me) = app.get("/auth/me", &alice).await;
    assert_eq!(me["online"], true, "still online while a device is open");

    second.close().await;
    let ev = bob_ws.expect_event("user:online").await;
    assert_eq!(ev["userId"], alice.id);
    assert_eq!(ev["online"], false);
    assert!(ev["lastSeen"].is_string());
    let (_, me) = app.get("/auth/me", &alice).await;
    assert_eq!(me["online"], false);
    assert!(me["lastSeen"].is_string());
    // presence goes only to users who share a chat
    stranger_ws.expect_no_event("user:online", QUIET).await;
}

#[tokio::test]
async fn typing_reaches_the_room_and_expires() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut a2 = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    for ws in [&mut a, &mut a2, &mut b] {
        let r = ws.request("chat:join", json!({"chatId": chat})).await;
        assert_eq!(r["event"], "ack", "{r}");
    }
    // `userId` in the payload is ignored: it is always the authenticated sender
    let r = a
        .request(
            "typing:update",
            json!({"chatId": chat, "isTyping": true, "userId": bob.id}),
        )
        .await;
    assert_eq!(r["event"], "ack");
    let ev = b.expect_event("typing:update").await;
    assert_eq!(
        ev,
        json!({"chatId": chat, "userId": alice.id, "isTyping": true})
    );
    a2.expect_no_event("typing:update", QUIET).await;
    // never echoed to the sender, and it expires by itself
    let started = std::time::Instant::now();
    let ev = b
        .expect_event_within("typing:update", Duration::from_secs(8))
        .await;
    assert_eq!(ev["isTyping"], false);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "expired too early"
    );
    a.expect_no_event("typing:update", QUIET).await;
    // the seed's alias
    a.emit("message:typing", json!({"chatId": chat, "isTyping": true}))
        .await;
    assert_eq!(b.expect_event("typing:update").await["isTyping"], true);
    a.emit("typing:update", json!({"chatId": chat, "isTyping": false}))
        .await;
    assert_eq!(b.expect_event("typing:update").await["isTyping"], false);

    // someone who joins while Alice is typing learns it from her next
    // refresh (refreshes are passed on at most once a second)
    a.emit("typing:update", json!({"chatId": chat, "isTyping": true}))
        .await;
    assert_eq!(b.expect_event("typing:update").await["isTyping"], true);
    let mut late = app.ws(&bob).await;
    let r = late.request("chat:join", json!({"chatId": chat})).await;
    assert_eq!(r["event"], "ack", "{r}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.emit("typing:update", json!({"chatId": chat, "isTyping": true}))
        .await;
    let ev = late.expect_event("typing:update").await;
    assert_eq!(
        ev,
        json!({"chatId": chat, "userId": alice.id, "isTyping": true})
    );
    // a quick second refresh is not passed on again
    a.emit("typing:update", json!({"chatId": chat, "isTyping": true}))
        .await;
    late.expect_no_event("typing:update", QUIET).await;
}

#[tokio::test]
async fn receipts_reach_the_sender_as_message_status() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    let m = app.send(&alice, chat, "tick tock").await;
    let id = m["id"].as_i64().unwrap();
    assert_eq!(m["status"], "SENT");
    b.expect_event("message:new").await;
    // it reached bob's device: delivered
    let ev = a.expect_event("message:status").await;
    assert_eq!(ev["messageId"], id);
    assert_eq!(ev["userId"], bob.id);
    assert_eq!(ev["status"], "DELIVERED");
    assert_eq!(ev["chatId"], chat);
    // bob reads over the socket
    let r = b
        .request("message:read", json!({"chatId": chat, "upToMessageId": id}))
        .await;
    assert_eq!(r["event"], "ack", "{r}");
    assert_eq!(r["data"]["unreadCount"], 0);
    let ev = a.expect_event("message:status").await;
    assert_eq!(
        (ev["messageId"].as_i64(), ev["status"].as_str()),
        (Some(id), Some("READ"))
    );
    assert_eq!(ev["messageStatus"], "READ");
    let (_, h) = app.get(&format!("/chat/{chat}/messages"), &alice).await;
    assert_eq!(h["items"][0]["status"], "READ");
    assert_eq!(h["items"][0]["isRead"], true);
    // and over REST
    let m2 = app.send(&alice, chat, "again").await["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/chat/{chat}/read"),
        &bob,
        json!({"messageIds": [m2]}),
    )
    .await;
    let statuses = a
        .collect_until(
            "message:status",
            |e| e["messageId"] == m2 && e["status"] == "READ",
            Duration::ZERO,
        )
        .await;
    assert!(
        statuses
            .iter()
            .any(|e| e["messageId"] == m2 && e["status"] == "READ"),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn edits_deletes_and_chat_changes_are_pushed() {
    let app = spawn_app().await;
    let admin = app.register("Admin").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let mut b = app.ws(&bob).await;
    let mut c = app.ws(&carol).await;
    let group = app.group(&admin, &[&bob], "G").await;
    let created = b.expect_event("chat:new").await;
    assert_eq!(created["id"], group);
    assert_eq!(created["name"], "G");

    let m = app.send(&admin, group, "v1").await["id"].as_i64().unwrap();
    b.expect_event("message:new").await;
    app.patch(
        &format!("/chat/{group}/messages/{m}"),
        &admin,
        json!({"content": "v2"}),
    )
    .await;
    let ev = b.expect_event("message:updated").await;
    assert_eq!(
        (ev["content"].as_str(), ev["isEdited"].as_bool()),
        (Some("v2"), Some(true))
    );
    app.delete(&format!("/chat/{group}/messages/{m}"), &admin)
        .await;
    let ev = b.expect_event("message:deleted").await;
    assert_eq!(
        (ev["id"].as_i64(), ev["isDeleted"].as_bool()),
        (Some(m), Some(true))
    );
    assert!(ev["content"].is_null());

    app.patch(
        &format!("/chat/{group}"),
        &admin,
        json!({"name": "Renamed"}),
    )
    .await;
    assert_eq!(b.expect_event("chat:updated").await["name"], "Renamed");
    app.post(
        &format!("/chat/{group}/participants"),
        &admin,
        json!({"userIds": [carol.id]}),
    )
    .await;
    assert_eq!(c.expect_event("chat:new").await["id"], group);
    let ev = b.expect_event("chat:updated").await;
    assert_eq!(ev["participants"].as_array().unwrap().len(), 3);

    // carol is removed: she gets chat:removed, then nothing more of the chat
    c.request("chat:join", json!({"chatId": group})).await;
    app.delete(&format!("/chat/{group}/participants/{}", carol.id), &admin)
        .await;
    assert_eq!(
        c.expect_event("chat:removed").await,
        json!({"chatId": group})
    );
    app.send(&admin, group, "after carol left").await;
    let mut bt = app.ws(&bob).await;
    bt.request("chat:join", json!({"chatId": group})).await;
    bt.emit("typing:update", json!({"chatId": group, "isTyping": true}))
        .await;
    // (after the group notes "Admin added Carol", "Admin removed Carol")
    let news = b
        .collect_until(
            "message:new",
            |m| m["content"] == "after carol left",
            Duration::ZERO,
        )
        .await;
    assert_eq!(news.last().unwrap()["content"], "after carol left");
    let leaked = c.collect_events("message:new", QUIET).await;
    assert!(leaked.is_empty(), "removed member got {leaked:?}");
    c.expect_no_event("typing:update", QUIET).await;
    let r = c
        .request(
            "message:send",
            json!({"chatId": group, "messageType": "TEXT", "content": "x"}),
        )
        .await;
    assert_eq!(r["data"]["code"], "not_found");
}

#[tokio::test]
async fn catch_up_from_a_cursor_has_no_gap_and_no_duplicate() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    app.send(&alice, chat, "seen live").await;
    let b = app.ws(&bob).await;
    let cursor = b.cursor;
    b.close().await;

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.send(&alice, chat, &format!("missed {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    app.patch(
        &format!("/chat/{chat}/messages/{}", ids[1]),
        &alice,
        json!({"content": "edited"}),
    )
    .await;
    app.delete(&format!("/chat/{chat}/messages/{}", ids[3]), &alice)
        .await;

    // page through with a small limit
    let mut events: Vec<Value> = Vec::new();
    let mut after = cursor.to_string();
    for _ in 0..20 {
        let (status, page) = app.get(&format!("/sync?after={after}&limit=3"), &bob).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        events.extend(page["items"].as_array().unwrap().iter().cloned());
        after = page["cursor"].to_string().trim_matches('"').to_string();
        if page["hasMore"] == false {
            break;
        }
    }
    let summary: Vec<(String, i64)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["data"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut expected: Vec<(String, i64)> = ids
        .iter()
        .map(|&id| ("message:new".to_string(), id))
        .collect();
    expected.push(("message:updated".into(), ids[1]));
    expected.push(("message:deleted".into(), ids[3]));
    assert_eq!(summary, expected);
    // the deleted message's content is gone in every replayed event
    for e in &events {
        if e["data"]["id"] == ids[3] {
            assert!(e["data"]["content"].is_null(), "{e}");
        }
    }
    // nothing more after the final cursor
    let (_, tail) = app.get(&format!("/sync?after={after}"), &bob).await;
    assert!(tail["items"].as_array().unwrap().is_empty());
    assert_eq!(tail["hasMore"], false);
    // an outsider's sync shows nothing of the chat
    let eve = app.register("Eve").await;
    let (_, eve_sync) = app.get("/sync?after=0", &eve).await;
    assert!(
        eve_sync["items"].as_array().unwrap().is_empty(),
        "{eve_sync}"
    );
    let (status, _) = app.get("/sync?after=abc", &bob).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_and_others_keep_receiving() {
    if is_cluster() {
        return; // the proxy's own buffers hold what the server would count as unread
    }
    // a flood on purpose: no per-user send limit here
    let app = spawn_with(|a| a.send_rate = 0).await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let group = app.group(&alice, &[&bob, &carol], "G").await;
    let stalled = app.ws(&bob).await; // never read from again
    let mut healthy = app.ws(&carol).await;

    let total = 1500usize;
    let reader = tokio::spawn(async move {
        let mut got = 0usize;
        while got < total {
            match healthy.next_frame_within(Duration::from_secs(20)).await {
                Some(f) if f["event"] == "message:new" => got += 1,
                Some(_) => {}
                None => break,
            }
        }
        got
    });
    let big = "x".repeat(9_900);
    let mut a = app.ws(&alice).await;
    for i in 0..total {
        let r = a
            .request(
                "message:send",
                json!({"chatId": group, "messageType": "TEXT", "content": format!("{i}{big}")}),
            )
            .await;
        assert_eq!(r["event"], "ack");
    }
    assert_eq!(
        reader.await.unwrap(),
        total,
        "the healthy client got every message"
    );

    // the stalled client: what was buffered drains, then the server's close
    let mut stalled = stalled;
    let mut received = 0usize;
    let mut closed = false;
    for _ in 0..(total + 10) {
        match stalled.next_frame_within(Duration::from_secs(5)).await {
            Some(_) => received += 1,
            None => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "stalled connection was closed");
    assert!(
        received < total,
        "it was cut off before getting everything ({received})"
    );
    let (status, _) = app.get("/health", &alice).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_frames_get_errors_and_harm_nobody() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut bad = app.ws(&alice).await;
    let mut other = app.ws(&bob).await;
    let samples = [
        "not json".to_string(),
        "{".to_string(),
        "[]".to_string(),
        "42".to_string(),
        json!({"event": "no:such:event", "data": {}}).to_string(),
        json!({"event": "message:send", "data": {"chatId": "x"}}).to_string(),
        json!({"event": "message:send", "data": {"chatId": chat, "messageType": "TEXT"}})
            .to_string(),
        json!({"event": "chat:join", "data": 5}).to_string(),
        json!({"event": "typing:update", "data": {"chatId": chat}}).to_string(),
        json!({"event": 7, "data": {}}).to_string(),
    ];
    for i in 0..200 {
        bad.send_text(&samples[i % samples.len()]).await;
        let error = bad.expect_event("error").await;
        assert!(error["code"].is_string(), "{error}");
    }
    // errors carry the ack of the frame that caused them
    let r = bad.request("no:such:event", json!({})).await;
    assert_eq!(r["event"], "error");
    // ... also when the envelope itself is wrong, as long as an ack is in it
    for (frame, ack, field) in [
        (json!({"data": {}, "ack": 101}), json!(101), "event"),
        (
            json!({"event": 5, "data": {}, "ack": 102}),
            json!(102),
            "event",
        ),
        (
            json!({"event": "chat:join", "data": {"chatId": chat}, "ack": -3}),
            json!(-3),
            "ack",
        ),
        (
            json!({"event": "chat:join", "data": {"chatId": chat}, "ack": 1.5}),
            json!(1.5),
            "ack",
        ),
    ] {
        bad.send_text(&frame.to_string()).await;
        let reply = bad.next_frame().await.expect("a reply");
        assert_eq!(reply["event"], "error", "{frame} → {reply}");
        assert_eq!(reply["ack"], ack, "{frame} → {reply}");
        assert_eq!(reply["data"]["field"], field, "{frame} → {reply}");
    }
    // the same connection still works, and so does everyone else's
    let r = bad
        .request(
            "message:send",
            json!({"chatId": chat, "messageType": "TEXT", "content": "still here"}),
        )
        .await;
    assert_eq!(r["event"], "ack");
    assert_eq!(
        other.expect_event("message:new").await["content"],
        "still here"
    );
    // a frame over 64 KiB closes the connection, nothing else
    let mut huge = app.ws(&alice).await;
    huge.send_text(&"x".repeat(70 * 1024)).await;
    assert!(
        huge.closed_within(WAIT).await,
        "oversized frame closes the socket"
    );
    app.send(&alice, chat, "server is fine").await;
    assert_eq!(
        other.expect_event("message:new").await["content"],
        "server is fine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_group_receipts_do_not_flood_the_sender() {
    let app = spawn_app().await;
    let sender = app.register("Sender").await;
    let mut members = Vec::new();
    for i in 0..40 {
        members.push(app.register(&format!("M{i}")).await);
    }
    let refs: Vec<&TestUser> = members.iter().collect();
    let group = app.group(&sender, &refs, "Big").await;
    let mut sockets = Vec::new();
    for m in &members {
        sockets.push(app.ws(m).await);
    }
    let mut s = app.ws(&sender).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = s
            .request(
                "message:send",
                json!({"chatId": group, "messageType": "TEXT", "content": format!("hello {i}")}),
            )
            .await;
        assert_eq!(r["event"], "ack");
        ids.push(r["data"]["id"].as_i64().unwrap());
    }
    for ws in &mut sockets {
        for _ in 0..5 {
            ws.expect_event("message:new").await;
        }
    }
    // 40 members × 5 messages = 200 receipts, but the sender hears only when
    // a message's ticks change: once per message (all delivered)
    let statuses = s
        .collect_until(
            "message:status",
            |e| e["messageId"] == ids[4],
            Duration::from_millis(400),
        )
        .await;
    assert!(
        statuses.len() <= ids.len(),
        "{} status frames",
        statuses.len()
    );
    let newest = statuses.iter().filter(|e| e["messageId"] == ids[4]).count();
    assert_eq!(newest, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|e| e["messageStatus"] == "DELIVERED"),
        "{statuses:?}"
    );
    // everyone reads: one READ for the newest message
    for (m, ws) in members.iter().zip(sockets.iter_mut()) {
        let _ = m;
        ws.emit(
            "message:read",
            json!({"chatId": group, "upToMessageId": ids[4]}),
        )
        .await;
    }
    let reads = s
        .collect_until(
            "message:status",
            |e| e["messageId"] == ids[4] && e["messageStatus"] == "READ",
            Duration::from_millis(400),
        )
        .await;
    assert!(
        reads
            .iter()
            .any(|e| e["messageId"] == ids[4] && e["messageStatus"] == "READ"),
        "{reads:?}"
    );
    assert!(reads.len() <= ids.len(), "{} read frames", reads.len());
    // and the sender's socket is alive
    let r = s.request("chat:join", json!({"chatId": group})).await;
    assert_eq!(r["event"], "ack");
}

/// `chat:updated` carries each member's own unread count (the chat is
/// serialised once per distinct count, not once per member).
#[tokio::test]
async fn chat_updates_carry_each_members_own_unread_count() {
    let app = spawn_app().await;
    let admin = app.register("Admin").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let dave = app.register("Dave").await;
    let group = app.group(&admin, &[&bob, &carol, &dave], "G").await;
    let first = app.send(&admin, group, "one").await["id"].as_i64().unwrap();
    app.send(&admin, group, "two").await;
    // bob reads one of two, carol both, dave none
    app.post(
        &format!("/chat/{group}/read"),
        &bob,
        json!({"upToMessageId": first}),
    )
    .await;
    app.post(
        &format!("/chat/{group}/read"),
        &carol,
        json!({"upToMessageId": first + 1000}),
    )
    .await;
    let mut sockets = Vec::new();
    for user in [&admin, &bob, &carol, &dave] {
        sockets.push(app.ws(user).await);
    }
    let (s, _) = app
        .patch(
            &format!("/chat/{group}"),
            &admin,
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    let mut counts = Vec::new();
    for ws in &mut sockets {
        let ev = ws.expect_event("chat:updated").await;
        assert_eq!(ev["name"], "Renamed");
        assert_eq!(ev["participants"].as_array().unwrap().len(), 4);
        counts.push(ev["unreadCount"].as_i64().unwrap());
    }
    assert_eq!(counts, vec![0, 1, 0, 2], "admin, bob, carol, dave");
}
