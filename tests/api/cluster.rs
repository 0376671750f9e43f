//! Many nodes: three `natter serve` processes (the real binary) on one
//! PostgreSQL database and one NATS server (`--bus nats://…`). Runs in the
//! PostgreSQL pass of the suite (`NATTER_TEST_DB=postgres`; `./test.sh`
//! starts NATS with `scripts/ensure-nats.sh`); on SQLite it returns at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// A node of the cluster: the process and a client of it.
struct Node {
    server: Server,
    app: TestApp,
    _dir: tempfile::TempDir,
}

/// Starts a node on `db` with the shared bus (and any extra flags; S3
/// credentials are always in its environment).
fn node(db: &TestDb, extra: &[&str]) -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let nats = nats_url();
    let mut args = vec![
        "--database",
        db.url.as_str(),
        "--bus",
        nats.as_str(),
        "--send-rate",
        "0",
        "--register-rate",
        "0",
    ];
    args.extend_from_slice(extra);
    let server = spawn_binary(dir.path(), &args, |cmd| {
        for (k, v) in S3_ENV {
            cmd.env(k, v);
        }
    });
    let app = TestApp::attach(&server.base);
    Node {
        server,
        app,
        _dir: dir,
    }
}

/// Every `event` frame within `wait`.
async fn all_events(ws: &mut WsClient, event: &str, wait: Duration) -> Vec<Value> {
    ws.collect_events(event, wait).await
}

/// Every frame until one matches `done` (which is included); fails after
/// [`WAIT`].
async fn frames_until(ws: &mut WsClient, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(f) = ws.next_frame_within(left).await else {
            panic!("no matching frame within {WAIT:?}; got {out:?}");
        };
        let hit = done(&f);
        out.push(f);
        if hit {
            return out;
        }
    }
}

/// Whether `viewer` sees `user` online in `chat` (`GET /chat/:id` on `app`).
async fn online_in(app: &TestApp, viewer: &TestUser, chat: i64, user: i64) -> bool {
    let (status, body) = app.get(&format!("/chat/{chat}"), viewer).await;
    assert_eq!(status, 200, "{body}");
    body["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .find(|p| p["user"]["id"].as_i64() == Some(user))
        .map(|p| p["user"]["online"] == true)
        .expect("the user is a participant")
}

/// `/sync` pages for `user` on `app` from `after` until `hasMore` is false.
async fn sync_all(app: &TestApp, user: &TestUser, mut after: i64) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..1000 {
        let (status, page) = app
            .get(&format!("/sync?after={after}&limit=200"), user)
            .await;
        assert_eq!(status, 200, "sync: {page}");
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        after = page["cursor"]
            .as_i64()
            .or_else(|| page["cursor"].as_str().and_then(|s| s.parse().ok()))
            .expect("cursor");
        if page["hasMore"] != true {
            return items;
        }
    }
    panic!("/sync did not drain in 1000 pages");
}

#[tokio::test]
async fn three_nodes_share_messages_presence_typing_and_receipts() {
    if !is_postgres() {
        return;
    }
    let db = TestDb::create();
    let s3 = S3Server::start("natter-cluster").await;
    let uploads = s3.uploads_url();
    let shared = ["--uploads", uploads.as_str()];
    let (a, b, c) = (node(&db, &shared), node(&db, &shared), node(&db, &shared));

    // One JWT secret for all: the database holds it, so a token from A works on B and C.
    let alice = a.app.register("Alice").await;
    let bob = b.app.register("Bob").await;
    let carol = c.app.register("Carol").await;
    for n in [&a, &b, &c] {
        let (status, me) = n.app.get("/auth/me", &alice).await;
        assert_eq!(status, 200, "a token made on A is good on every node: {me}");
    }
    let chat = a.app.group(&alice, &[&bob, &carol], "Across nodes").await;

    let mut alice_ws = a.app.ws(&alice).await;
    let mut carol_ws = c.app.ws(&carol).await;
    // Bob comes online on B: Alice on A hears it, and C reports him online.
    let mut bob_ws = b.app.ws(&bob).await;
    let seen = alice_ws
        .collect_until(
            "user:online",
            |e| e["userId"].as_i64() == Some(bob.id),
            Duration::from_millis(50),
        )
        .await;
    let bob_online = seen.iter().find(|e| e["userId"].as_i64() == Some(bob.id));
    assert_eq!(
        bob_online.map(|e| e["online"].clone()),
        Some(json!(true)),
        "{seen:?}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        if online_in(&c.app, &carol, chat, bob.id).await {
            break;
        }
        assert!(Instant::now() < deadline, "C never saw Bob online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A message sent on A reaches B's and C's sockets exactly once each.
    let sent = a.app.send(&alice, chat, "hello from node A").await;
    let id = sent["id"].as_i64().unwrap();
    for (who, ws) in [("Bob on B", &mut bob_ws), ("Carol on C", &mut carol_ws)] {
        let got = all_events(ws, "message:new", Duration::from_millis(1500)).await;
        let copies = got.iter().filter(|m| m["id"].as_i64() == Some(id)).count();
        assert_eq!(copies, 1, "{who} got {copies} copies: {got:?}");
    }
    // ... the sender's own socket on A once too, and reaching Bob's device
    // on B (or Carol's on C) turns Alice's tick on A to delivered.
    let frames = frames_until(&mut alice_ws, |f| {
        f["event"] == "message:status" && f["data"]["messageId"].as_i64() == Some(id)
    })
    .await;
    let own = frames
        .iter()
        .filter(|f| f["event"] == "message:new" && f["data"]["id"].as_i64() == Some(id))
        .count();
    assert_eq!(own, 1, "the sender's socket got {own} copies: {frames:?}");
    let (status, body) = c
        .app
        .post(
            &format!("/chat/{chat}/read"),
            &carol,
            json!({"upToMessageId": id}),
        )
        .await;
    assert!(status.is_success(), "read on C: {status} {body}");
    frames_until(&mut alice_ws, |f| {
        f["event"] == "message:status"
            && f["data"]["status"] == "READ"
            && f["data"]["userId"].as_i64() == Some(carol.id)
    })
    .await;

    // A file uploaded on A is readable on B and C (one bucket for all).
    let png = image_bytes(64, 48, image::ImageFormat::Png);
    let (status, up) = upload_part(
        &a.app,
        &alice,
        reqwest::multipart::Part::bytes(png.clone()).file_name("pic.png"),
    )
    .await;
    assert_eq!(status, 201, "{up}");
    a.app
        .post(
            &format!("/chat/{chat}/messages"),
            &alice,
            json!({"messageType": "IMAGE", "content": "", "fileUrl": up["fileUrl"]}),
        )
        .await;
    for (n, user) in [(&b, &bob), (&c, &carol)] {
        let r = n
            .app
            .client
            .get(format!("{}{}", n.app.base, up["fileUrl"].as_str().unwrap()))
            .bearer_auth(&user.token)
            .header("Range", "bytes=0-7")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &png[..8]);
    }

    // /sync on C returns what was sent on A.
    let items = sync_all(&c.app, &carol, carol_ws.cursor).await;
    assert!(
        items
            .iter()
            .any(|e| e["event"] == "message:new" && e["data"]["id"].as_i64() == Some(id)),
        "C's /sync lacks the message sent on A: {items:?}"
    );

    // Typing on B reaches A's room, not back to B.
    for ws in [&mut alice_ws, &mut bob_ws] {
        let r = ws.request("chat:join", json!({"chatId": chat})).await;
        assert_eq!(r["event"], "ack", "{r}");
    }
    // the join's ack came back on B: the bus carries the next typing state
    bob_ws
        .emit("typing:update", json!({"chatId": chat, "isTyping": true}))
        .await;
    let ev = alice_ws.expect_event("typing:update").await;
    assert_eq!(
        ev,
        json!({"chatId": chat, "userId": bob.id, "isTyping": true})
    );

    // Removing Carol on A: her socket on C hears chat:removed.
    let (status, body) = a
        .app
        .delete(&format!("/chat/{chat}/participants/{}", carol.id), &alice)
        .await;
    assert!(status.is_success(), "remove Carol: {status} {body}");
    let ev = carol_ws.expect_event("chat:removed").await;
    assert_eq!(ev["chatId"].as_i64(), Some(chat), "{ev}");

    // An administrator on A disables Carol: her socket on C closes within ~2 s.
    pg_connect(&db.url)
        .await
        .batch_execute(&format!(
            "UPDATE users SET is_admin = 1 WHERE id = {}",
            alice.id
        ))
        .await
        .expect("make Alice an administrator");
    let (status, body) = a
        .app
        .patch(
            &format!("/admin/users/{}", carol.id),
            &alice,
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, 200, "disable Carol: {body}");
    let started = Instant::now();
    assert!(
        carol_ws.closed_within(Duration::from_secs(3)).await,
        "Carol's socket on C stayed open"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // Bob leaves B: after the grace, Alice on A sees him offline.
    bob_ws.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ev = alice_ws
            .expect_event_within("user:online", Duration::from_secs(10))
            .await;
        if ev["userId"].as_i64() == Some(bob.id) && ev["online"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "Bob never went offline: {ev}");
    }

    drop((a, b, c));
}

#[tokio::test]
async fn a_killed_node_loses_no_acknowledged_message() {
    if !is_postgres() {
        return;
    }
    let db = TestDb::create();
    let mut doomed = node(&db, &[]);
    let survivor = node(&db, &[]);
    let alice = doomed.app.register("Alice").await;
    let bob = survivor.app.register("Bob").await;
    let chat = survivor.app.direct_chat(&bob, &alice).await;
    let mut bob_ws = survivor.app.ws(&bob).await;

    // Alice writes over the doomed node's socket, one ack at a time.
    let mut alice_ws = doomed.app.ws(&alice).await;
    let start = alice_ws.cursor;
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let writer = {
        let acked = acked.clone();
        tokio::spawn(async move {
            for i in 0..2_000 {
                let send = alice_ws.request_within(
                    "message:send",
                    json!({"chatId": chat, "messageType": "TEXT", "content": format!("m{i}"), "clientId": format!("c{i}")}),
                    Duration::from_secs(5),
                );
                match send.await {
                    Some(r) if r["event"] == "ack" => acked
                        .lock()
                        .unwrap()
                        .push(r["data"]["id"].as_i64().expect("id")),
                    Some(r) => panic!("send {i} refused: {r}"),
                    None => return,
                }
            }
        })
    };
    // Kill it mid-stream (SIGKILL: no shutdown, nothing flushed).
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 50 {
        assert!(Instant::now() < deadline, "the writer never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    doomed.server.child.kill().expect("SIGKILL");
    let _ = doomed.server.child.wait();
    tokio::time::timeout(Duration::from_secs(15), writer)
        .await
        .expect("the writer stops once its node is gone")
        .expect("writer");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 50);

    // Alice reconnects on the survivor and catches up with /sync: every
    // acknowledged message is there, once.
    let items = sync_all(&survivor.app, &alice, start).await;
    let ids: Vec<i64> = items
        .iter()
        .filter(|e| e["event"] == "message:new")
        .filter_map(|e| e["data"]["id"].as_i64())
        .collect();
    for id in &acked {
        assert_eq!(
            ids.iter().filter(|x| *x == id).count(),
            1,
            "acknowledged message {id} is not in /sync exactly once"
        );
    }
    // Bob, on the survivor, got every acknowledged one live too (exactly once).
    let live = bob_ws
        .collect_events("message:new", Duration::from_millis(1500))
        .await;
    for id in &acked {
        let n = live
            .iter()
            .filter(|m| m["id"].as_i64() == Some(*id))
            .count();
        assert_eq!(n, 1, "Bob got message {id} {n} times live");
    }

    // The dead node's user goes offline for Bob within the node TTL (≤ 60 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !online_in(&survivor.app, &bob, chat, alice.id).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Alice is still online a minute after her node died"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ev = bob_ws
        .expect_event_within("user:online", Duration::from_secs(5))
        .await;
    assert_eq!(
        (ev["userId"].as_i64(), ev["online"].as_bool()),
        (Some(alice.id), Some(false))
    );
}

#[tokio::test]
async fn an_unreachable_bus_stops_the_start_with_a_clear_error() {
    let err = serve_refuses(&["--bus", "nats://127.0.0.1:1"]);
    assert!(
        err.contains("cannot connect to the bus"),
        "unclear error: {err}"
    );
    let err = serve_refuses(&["--bus", "redis://x"]);
    assert!(err.contains("--bus"), "unclear error: {err}");
}

/// A private NATS server (`nats-server` from Debian's package, which
/// `scripts/ensure-nats.sh` installs) on 127.0.0.1:`port`.
fn nats_server(port: u16) -> std::process::Child {
    std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nats-server (scripts/ensure-nats.sh installs it)")
}

#[tokio::test]
async fn losing_nats_keeps_each_node_serving_and_it_recovers_by_itself() {
    if !is_postgres() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nats = nats_server(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let bus = format!("nats://127.0.0.1:{port}");
    let db = TestDb::create();
    let node_on = |db: &TestDb| {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = spawn_binary(
            dir.path(),
            &[
                "--database",
                db.url.as_str(),
                "--bus",
                bus.as_str(),
                "--send-rate",
                "0",
            ],
            |_| {},
        );
        let app = TestApp::attach(&server.base);
        (server, app, dir)
    };
    let (_a, a, _da) = node_on(&db);
    let (_b, b, _db) = node_on(&db);
    let alice = a.register("Alice").await;
    let bob = b.register("Bob").await;
    let chat = a.direct_chat(&alice, &bob).await;
    let mut alice_ws = a.ws(&alice).await;
    let mut bob_ws = b.ws(&bob).await;
    let first = a.send(&alice, chat, "before the outage").await;
    let got = bob_ws
        .collect_until(
            "message:new",
            |m| m["id"] == first["id"],
            Duration::from_millis(10),
        )
        .await;
    assert!(
        got.iter().any(|m| m["id"] == first["id"]),
        "the bus did not work at all"
    );

    // NATS goes away: A still stores the message and tells its own sockets.
    let _ = nats.kill();
    let _ = nats.wait();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = a.send(&alice, chat, "during the outage").await;
    let own = alice_ws
        .collect_until(
            "message:new",
            |m| m["id"] == during["id"],
            Duration::from_millis(10),
        )
        .await;
    assert!(
        own.iter().any(|m| m["id"] == during["id"]),
        "a node without NATS stopped serving its own sockets"
    );
    let (status, _) = b.get("/auth/me", &bob).await;
    assert_eq!(status, 200, "B keeps answering");

    // NATS is back on the same address: both nodes reconnect by themselves
    // and messages cross again.
    let mut nats = nats_server(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut crossed = false;
    let mut i = 0;
    while !crossed {
        assert!(
            Instant::now() < deadline,
            "the nodes never came back to NATS"
        );
        i += 1;
        let m = a.send(&alice, chat, &format!("after the outage {i}")).await;
        let got = bob_ws
            .collect_events("message:new", Duration::from_millis(500))
            .await;
        crossed = got.iter().any(|x| x["id"] == m["id"]);
    }
    // Whatever Bob's socket missed while NATS was away, /sync gives back.
    let items = sync_all(&b, &bob, bob_ws.cursor).await;
    assert!(
        items
            .iter()
            .any(|e| e["event"] == "message:new" && e["data"]["id"] == during["id"]),
        "the message sent during the outage is not in /sync"
    );
    let _ = nats.kill();
    let _ = nats.wait();
}

/// Web Push across nodes: a socket that closed on another node stops
/// counting at once (the bus's socket delta), not only when that node's 2 s
/// presence grace ends, so a message sent within the grace is pushed; while
/// the socket is open, nothing is.
#[tokio::test]
async fn a_socket_closed_on_another_node_is_pushed_to_within_the_grace() {
    if !is_postgres() {
        return;
    }
    let db = TestDb::create();
    let (service, log) = crate::push::push_service().await;
    let extra = ["--push-allow-private"];
    let (a, b) = (node(&db, &extra), node(&db, &extra));
    let ana = a.app.register("Ana").await;
    let bob = a.app.register("Bob").await;
    let chat = a.app.direct_chat(&ana, &bob).await;
    let (secret, auth, sub) = crate::push::browser(&format!("{service}/push/bob"));
    let (status, body) = a.app.post("/push/subscriptions", &bob, sub).await;
    assert_eq!(status, 201, "{body}");
    let pushed = || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/push/bob")
            .count()
    };

    // Bob is connected on B; once A knows, A pushes nothing to him.
    let bob_ws = b.app.ws(&bob).await;
    let deadline = Instant::now() + WAIT;
    while !online_in(&a.app, &ana, chat, bob.id).await {
        assert!(Instant::now() < deadline, "A never saw Bob online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.app.send(&ana, chat, "while Bob is connected").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pushed(), 0, "a push to someone with an open socket");

    // Bob's socket closes. Within the grace (he still shows online), a
    // message sent on A is pushed; a few tries, for the bus's latency.
    bob_ws.close().await;
    let closed = Instant::now();
    let mut tries = 0;
    while pushed() == 0 && closed.elapsed() < Duration::from_millis(1500) {
        assert!(
            online_in(&a.app, &ana, chat, bob.id).await,
            "the grace ended early"
        );
        tries += 1;
        a.app
            .send(&ana, chat, &format!("are you there? ({tries})"))
            .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pushed() == 0 {
        assert!(
            Instant::now() < deadline,
            "no push for {tries} messages sent within the grace"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let push = log
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.path == "/push/bob")
        .cloned()
        .unwrap();
    let payload = crate::push::open_push(&push, &secret, &auth);
    assert!(
        payload["body"]
            .as_str()
            .unwrap()
            .starts_with("are you there?"),
        "{payload}"
    );
    drop(b);
}
