//! `/socket.io/` at the wire level: Engine.IO v4 long-polling spoken by hand
//! over reqwest, so `cargo test` covers the endpoint without Node. The real
//! socket.io client is exercised by `tests/socketio/run.sh`.

use std::time::Duration;

use reqwest::header::ORIGIN;
use serde_json::{json, Value};

use crate::helpers::*;

/// Engine.IO separates packets in one polling payload with this byte.
const RECORD_SEPARATOR: char = '\u{1e}';

/// One Engine.IO long-polling session.
pub(crate) struct Polling {
    pub(crate) sid: String,
    pub(crate) url: String,
    client: reqwest::Client,
    /// Socket.IO packets received and not yet taken, in order.
    pending: Vec<String>,
    /// Engine.IO pings answered so far.
    pings: usize,
}

impl Polling {
    /// Opens an Engine.IO session (no namespace yet).
    pub(crate) async fn open(app: &TestApp, origin: Option<&str>) -> Polling {
        let client = app.client.clone();
        // One node's own address: a long-polling session lives on one node.
        let mut req = client.get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            app.node_base
        ));
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        let body = req.send().await.expect("handshake").text().await.unwrap();
        let open = body.strip_prefix('0').expect("an open packet");
        let open: Value = serde_json::from_str(open).expect("open json");
        let sid = open["sid"].as_str().expect("sid");
        Polling {
            sid: sid.to_string(),
            url: format!(
                "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
                app.node_base
            ),
            client,
            pending: Vec::new(),
            pings: 0,
        }
    }

    /// Sends Engine.IO message packets (`4` + a Socket.IO packet).
    pub(crate) async fn send(&self, packet: &str) {
        let resp = self
            .client
            .post(&self.url)
            .body(format!("4{packet}"))
            .send()
            .await
            .expect("post");
        assert!(resp.status().is_success(), "post: {}", resp.status());
    }

    /// Connects to the main namespace with this `auth` object.
    pub(crate) async fn connect(&self, auth: Value) {
        self.send(&format!("0{auth}")).await;
    }

    /// One long-poll: queues its Socket.IO packets and answers pings.
    pub(crate) async fn poll_once(&mut self) {
        let body = self
            .client
            .get(&self.url)
            .send()
            .await
            .expect("poll")
            .text()
            .await
            .unwrap();
        for packet in body.split(RECORD_SEPARATOR) {
            match packet.split_at(1) {
                ("2", _) => {
                    let pong = self.client.post(&self.url).body("3").send().await;
                    assert!(pong.is_ok(), "pong");
                    self.pings += 1;
                }
                ("4", p) => self.pending.push(p.to_string()),
                (t, _) => panic!("unexpected Engine.IO packet type {t}: {body}"),
            }
        }
    }

    /// The next Socket.IO packet.
    pub(crate) async fn next(&mut self) -> String {
        for _ in 0..20 {
            if !self.pending.is_empty() {
                return self.pending.remove(0);
            }
            self.poll_once().await;
        }
        panic!("no Socket.IO packet after 20 polls");
    }

    /// Waits for the `event` event; returns its data.
    pub(crate) async fn expect_event(&mut self, event: &str) -> Value {
        for _ in 0..20 {
            let packet = tokio::time::timeout(Duration::from_secs(30), self.next())
                .await
                .expect("a packet in time");
            if let Some(array) = packet.strip_prefix('2') {
                let array: Value = serde_json::from_str(array).expect("event json");
                if array[0] == event {
                    return array[1].clone();
                }
            }
        }
        panic!("no {event} event");
    }
}

#[tokio::test]
async fn socketio_polling_connects_acks_and_receives_events() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;

    let mut sio = Polling::open(&app, None).await;
    sio.connect(json!({"token": alice.token})).await;
    let connect = sio.next().await;
    assert!(
        connect.starts_with("0{\"sid\""),
        "connect packet: {connect}"
    );
    let ready = sio.expect_event("ready").await;
    assert_eq!(ready["userId"], alice.id);
    assert!(ready["cursor"].is_i64(), "{ready}");

    // An event with ack id 7 gets an ack packet with the same id and the
    // `/ws` ack data.
    sio.send(&format!(r#"27["chat:join",{{"chatId":{chat}}}]"#))
        .await;
    assert_eq!(sio.next().await, format!(r#"37[{{"chatId":{chat}}}]"#));
    sio.send(r#"28["chat:join",{"chatId":999999}]"#).await;
    let denied = sio.next().await;
    let denied: Value = serde_json::from_str(denied.strip_prefix("38").expect("ack 8")).unwrap();
    assert_eq!(denied[0]["error"]["code"], "not_found", "{denied}");

    // A message sent over REST arrives as message:new with the REST body.
    let sent = app.send(&bob, chat, "over rest").await;
    let got = sio.expect_event("message:new").await;
    assert_eq!(got, sent);
    app.stop().await;
}

/// Issue 13's events ride the same hub: group notes, `message:hidden`,
/// `chat:cleared` reach socket.io connections too.
#[tokio::test]
async fn socketio_gets_notes_hidden_and_cleared() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.group(&alice, &[&bob], "Trip").await;
    let mut sio = Polling::open(&app, None).await;
    sio.connect(json!({"token": bob.token})).await;
    sio.expect_event("ready").await;

    app.patch(&format!("/chat/{chat}"), &alice, json!({"name": "Beach"}))
        .await;
    let note = sio.expect_event("message:new").await;
    assert_eq!(note["messageType"], "SYSTEM");
    assert_eq!(note["system"]["action"], "renamed");
    let m = app.send(&alice, chat, "hi").await["id"].as_i64().unwrap();
    app.delete(&format!("/chat/{chat}/messages/{m}?for=me"), &bob)
        .await;
    assert_eq!(
        sio.expect_event("message:hidden").await,
        json!({"chatId": chat, "messageId": m})
    );
    app.post(&format!("/chat/{chat}/clear"), &bob, json!({}))
        .await;
    assert_eq!(
        sio.expect_event("chat:cleared").await,
        json!({"chatId": chat, "upToMessageId": m})
    );
    app.stop().await;
}

#[tokio::test]
async fn socketio_refuses_bad_tokens_and_foreign_origins() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;

    let mut sio = Polling::open(&app, None).await;
    sio.connect(json!({"token": "not-a-jwt"})).await;
    let refused = sio.next().await;
    let body: Value = serde_json::from_str(refused.strip_prefix('4').expect("connect_error"))
        .expect("connect_error json");
    assert!(body["message"].as_str().is_some(), "{refused}");

    let mut sio = Polling::open(&app, None).await;
    sio.connect(json!({})).await;
    assert_eq!(sio.next().await, r#"4{"message":"missing token"}"#);

    let mut sio = Polling::open(&app, Some("http://evil.example")).await;
    sio.connect(json!({"token": alice.token})).await;
    assert_eq!(sio.next().await, r#"4{"message":"origin not allowed"}"#);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_closes_socketio_polling_sessions_promptly() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let mut sio = Polling::open(&app, None).await;
    sio.connect(json!({"token": alice.token})).await;
    sio.expect_event("ready").await;
    // The heartbeat pings once at the start, then every 25 s: once that
    // first ping is answered, the poll below can only get the close.
    for _ in 0..5 {
        if sio.pings > 0 {
            break;
        }
        tokio::time::timeout(Duration::from_secs(30), sio.poll_once())
            .await
            .expect("a poll answered in time");
    }
    assert!(sio.pings > 0, "no ping");

    // A long-poll left waiting must not hold the graceful shutdown for the
    // ping interval (25 s): the server closes the transport instead.
    let poll = tokio::spawn(sio.client.get(&sio.url).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    let body = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the pending poll ends")
        .expect("join");
    // An Engine.IO close ("1"), not a namespace disconnect ("41"): the
    // client reconnects by itself once the server is back, as after a `/ws`
    // close with 1001.
    let text = body
        .expect("poll answered")
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(text, "1");
}
