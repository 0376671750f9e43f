//! The store under load and under faults, on whichever store the run uses
//! (`NATTER_TEST_DB=postgres` for PostgreSQL, see helpers): concurrent
//! writers while a reader walks `/sync` (on PostgreSQL across two servers on
//! one database), bad `--database` values at start, and a lost PostgreSQL
//! connection while running.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const WRITERS: usize = 8;
const PER_WRITER: usize = 60;
const CHATS: usize = 3;

/// Drains `/sync` for `user` from `after` until `hasMore` is false; returns
/// the final cursor.
async fn drain_sync(app: &TestApp, user: &TestUser, mut after: i64) -> i64 {
    for _ in 0..1000 {
        let (status, page) = app
            .get(&format!("/sync?after={after}&limit=200"), user)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        after = cursor_of(&page);
        if page["hasMore"] == false {
            return after;
        }
    }
    panic!("/sync did not drain in 1000 pages");
}

/// A page's `cursor` (a number, or a string holding one).
fn cursor_of(page: &Value) -> i64 {
    match &page["cursor"] {
        Value::Number(n) => n.as_i64().expect("integer cursor"),
        Value::String(s) => s.parse().expect("numeric cursor"),
        other => panic!("cursor {other} in {page}"),
    }
}

/// Writers send into shared groups at once — half over REST, half over the
/// WebSocket; on PostgreSQL half of them through a second server on the same
/// database — while a reader in every group walks `/sync` from its cursor in
/// small pages (alternating servers). The reader must see every
/// acknowledged message exactly once, each writer's messages in the order
/// they were sent, with cursors that only grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_a_sync_reader_see_every_message_exactly_once() {
    let tune = |a: &mut natter::config::ServeArgs| {
        a.send_rate = 0;
        a.register_rate = 0;
    };
    let first = spawn_with(tune).await;
    let second = if is_postgres() {
        Some(spawn_peer(&first, tune).await)
    } else {
        None
    };
    let nodes: Vec<&TestApp> = std::iter::once(&first).chain(second.as_ref()).collect();

    let reader = first.register("Reader").await;
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        writers.push(first.register(&format!("Writer{i}")).await);
    }
    let members: Vec<&TestUser> = writers.iter().collect();
    let mut chats = Vec::new();
    for c in 0..CHATS {
        chats.push(first.group(&reader, &members, &format!("Load {c}")).await);
    }
    // everything before the writers start (chat:new events)
    let start = drain_sync(&first, &reader, 0).await;

    let done = Arc::new(AtomicBool::new(false));
    // (writer, sequence) → acknowledged message id
    let acked: Arc<Mutex<HashMap<(usize, usize), i64>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(90);

    // the reader, concurrently with the writers
    let reader_task = {
        let nodes: Vec<(String, reqwest::Client)> = nodes
            .iter()
            .map(|n| (n.base.clone(), n.client.clone()))
            .collect();
        let (reader, done, acked) = (reader.clone(), done.clone(), acked.clone());
        tokio::spawn(async move {
            let mut after = start;
            let mut seen: Vec<Value> = Vec::new();
            let mut pages = 0usize;
            // messages read while the writers were still sending
            let mut overlapped = 0usize;
            loop {
                assert!(Instant::now() < deadline, "reader did not finish in time");
                assert!(pages < 50_000, "reader: too many pages");
                let writers_done = done.load(Ordering::SeqCst);
                let (base, client) = &nodes[pages % nodes.len()];
                pages += 1;
                let resp = client
                    .get(format!("{base}/sync?after={after}&limit=7"))
                    .bearer_auth(&reader.token)
                    .send()
                    .await
                    .expect("sync request");
                assert_eq!(resp.status(), StatusCode::OK);
                let page: Value = resp.json().await.expect("sync json");
                let items = page["items"].as_array().expect("items").clone();
                let cursor = cursor_of(&page);
                if items.is_empty() {
                    assert_eq!(cursor, after, "an empty page returns its cursor");
                } else {
                    assert!(cursor > after, "cursor moves forward: {after} -> {cursor}");
                }
                assert!(items.len() <= 7, "limit honoured: {}", items.len());
                after = cursor;
                if !writers_done {
                    overlapped += items.len();
                }
                for item in items {
                    assert_eq!(item["event"], "message:new", "only sends happen: {item}");
                    seen.push(item["data"].clone());
                }
                if page["hasMore"] == true {
                    continue;
                }
                let total = acked.lock().unwrap().len();
                if writers_done && seen.len() >= total {
                    return (seen, after, pages, overlapped);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut tasks = Vec::new();
    for (w, user) in writers.iter().enumerate() {
        let node = nodes[w % nodes.len()];
        let (base, client, addr) = (node.base.clone(), node.client.clone(), node.addr);
        let (user, chats, acked) = (user.clone(), chats.clone(), acked.clone());
        let over_ws = w % 4 >= 2; // REST and WebSocket writers on every node
        let ws = if over_ws {
            let url = format!("ws://{addr}/ws?token={}", user.token);
            let (stream, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("ws connect");
            Some(stream)
        } else {
            None
        };
        tasks.push(tokio::spawn(async move {
            let mut ws = ws.map(|stream| WsWriter { stream, next: 1 });
            for n in 0..PER_WRITER {
                assert!(Instant::now() < deadline, "writer {w} stuck at {n}");
                let chat = chats[(w + n) % chats.len()];
                let content = format!("w{w}-{n}");
                let body = json!({"messageType": "TEXT", "content": content, "clientId": content});
                let message = match &mut ws {
                    Some(ws) => {
                        let mut data = body;
                        data["chatId"] = json!(chat);
                        ws.send(data).await
                    }
                    None => {
                        let resp = client
                            .post(format!("{base}/chat/{chat}/messages"))
                            .bearer_auth(&user.token)
                            .json(&body)
                            .send()
                            .await
                            .expect("send");
                        assert_eq!(resp.status(), StatusCode::CREATED, "writer {w} #{n}");
                        resp.json::<Value>().await.expect("message json")
                    }
                };
                assert_eq!(message["content"], content);
                let id = message["id"].as_i64().expect("message id");
                acked.lock().unwrap().insert((w, n), id);
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let (seen, end, pages, overlapped) = reader_task.await.expect("reader");

    eprintln!(
        "{} messages through {} server(s), read in {pages} /sync pages, \
         {overlapped} of them while the writers were sending",
        seen.len(),
        nodes.len()
    );
    assert!(overlapped > 0, "the reader ran while the writers wrote");
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), WRITERS * PER_WRITER);
    assert!(
        pages >= WRITERS * PER_WRITER / 7,
        "the reader walked in small pages ({pages})"
    );
    // exactly once: no duplicates, no gaps, nothing unexpected
    let mut ids = HashSet::new();
    for m in &seen {
        assert!(ids.insert(m["id"].as_i64().unwrap()), "seen twice: {m}");
    }
    let want: HashSet<i64> = acked.values().copied().collect();
    let missing: Vec<_> = want.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    // every writer's messages in the order it sent them, with their ids
    let mut next = [0usize; WRITERS];
    for m in &seen {
        let content = m["content"].as_str().unwrap();
        let (w, n) = content
            .trim_start_matches('w')
            .split_once('-')
            .map(|(w, n)| (w.parse::<usize>().unwrap(), n.parse::<usize>().unwrap()))
            .unwrap();
        assert_eq!(n, next[w], "writer {w}'s messages in send order");
        next[w] += 1;
        assert_eq!(Some(&m["id"].as_i64().unwrap()), acked.get(&(w, n)));
        assert_eq!(m["senderId"], writers[w].id);
    }
    // and nothing after the end, on any node
    for node in &nodes {
        let (_, tail) = node.get(&format!("/sync?after={end}"), &reader).await;
        assert_eq!(tail["items"], json!([]), "{tail}");
        assert_eq!(tail["hasMore"], false);
    }
}

/// A WebSocket writer: `message:send` with an ack, skipping pushed frames.
struct WsWriter {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl WsWriter {
    async fn send(&mut self, data: Value) -> Value {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        let ack = self.next;
        self.next += 1;
        let frame = json!({"event": "message:send", "data": data, "ack": ack}).to_string();
        self.stream
            .send(WsMessage::Text(frame.into()))
            .await
            .expect("ws send");
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.stream.next())
                .await
                .expect("ack in time")
                .expect("socket open")
                .expect("frame");
            let WsMessage::Text(text) = msg else { continue };
            let frame: Value = serde_json::from_str(text.as_str()).expect("json frame");
            if frame["ack"].as_u64() == Some(ack) {
                assert_eq!(frame["event"], "ack", "{frame}");
                return frame["data"].clone();
            }
        }
    }
}

/// Runs `natter serve` with `args` and a fresh data dir; it must exit
/// within 10 s. Returns (success, stderr).
async fn serve_exits(args: Vec<String>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(dir.path())
            .args(&args)
            .env("NO_COLOR", "1")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start natter");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("natter serve {args:?} still running after 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.success(), stderr)
    })
    .await
    .unwrap()
}

/// The lines of `stderr` that report the failure (`error: ...`).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.trim_start().to_lowercase().starts_with("error"))
        .collect()
}

#[tokio::test]
async fn a_database_url_of_another_scheme_is_refused_by_name() {
    let (ok, stderr) = serve_exits(vec!["--database".into(), "mysql://x".into()]).await;
    assert!(!ok, "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(errors[0].contains("mysql"), "names the scheme: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_postgres_fails_fast_naming_the_host() {
    if !is_postgres() {
        return; // PostgreSQL store only
    }
    let started = Instant::now();
    let (ok, stderr) = serve_exits(vec![
        "--database".into(),
        "postgres://postgres@127.0.0.1:1/x".into(),
    ])
    .await;
    assert!(!ok, "exit non-zero: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(errors[0].contains("127.0.0.1"), "names the host: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_database_of_another_program_is_refused_and_left_alone() {
    if !is_postgres() {
        return; // PostgreSQL store only
    }
    let db = TestDb::create();
    let client = pg_connect(&db.url).await;
    client
        .batch_execute("CREATE TABLE foo (x int); INSERT INTO foo VALUES (42)")
        .await
        .unwrap();
    let (ok, stderr) = serve_exits(vec!["--database".into(), db.url.clone()]).await;
    assert!(!ok, "refused: {stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // nothing created, nothing changed
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "only the other program's table");
    let x: i32 = client
        .query_one("SELECT x FROM foo", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(x, 42);
}

/// Sends one message; `Ok(id)` on 201, `Err(())` on 503 `unavailable`;
/// anything else fails the test.
async fn send_or_unavailable(
    app: &TestApp,
    user: &TestUser,
    chat: i64,
    text: &str,
) -> Result<i64, ()> {
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/chat/{chat}/messages"),
            Some(&user.token),
            Some(json!({"messageType": "TEXT", "content": text, "clientId": text})),
        )
        .await;
    match status {
        StatusCode::CREATED | StatusCode::OK => Ok(body["id"].as_i64().expect("id")),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            Err(())
        }
        other => panic!("during the outage: {other} {body}"),
    }
}

/// PostgreSQL drops every connection of the server (as on a failover or a
/// restart): requests answer 503 `unavailable` or succeed, never 500; the
/// server recovers by itself and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_postgres_connection_answers_503_and_recovers() {
    if !is_postgres() {
        return; // PostgreSQL store only
    }
    let app = spawn_with(|a| a.send_rate = 0).await;
    let db_name = app.dir.db.as_ref().unwrap().name.clone();
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(
            app.send(&ana, chat, &format!("before {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }

    let admin = pg_connect(&pg_url("postgres")).await;
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"
    );
    let mut unavailable = 0;
    for round in 0..3 {
        let killed = admin.query(kill.as_str(), &[]).await.unwrap().len();
        assert!(killed > 0 || round > 0, "the server had connections to end");
        for i in 0..10 {
            match send_or_unavailable(&app, &ana, chat, &format!("during {round}-{i}")).await {
                Ok(id) => acked.push(id),
                Err(()) => unavailable += 1,
            }
            let (status, body) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
            assert!(
                status == StatusCode::OK
                    || (status == StatusCode::SERVICE_UNAVAILABLE
                        && body["error"]["code"] == "unavailable"),
                "history during the outage: {status} {body}"
            );
        }
    }
    eprintln!("{unavailable} sends answered 503 during the outage");

    // recovers by itself within 10 s
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        match send_or_unavailable(&app, &ana, chat, &format!("after {n}")).await {
            Ok(id) => {
                acked.push(id);
                break;
            }
            Err(()) => {
                assert!(Instant::now() < deadline, "no recovery within 10 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    for i in 0..10 {
        acked.push(
            app.send(&bob, chat, &format!("after more {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }

    // every acknowledged message is in the history, once
    let mut seen = Vec::new();
    let mut after = 0;
    for _ in 0..100 {
        let (status, page) = app
            .get(
                &format!("/chat/{chat}/messages?after={after}&limit=200"),
                &bob,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for m in page["items"].as_array().unwrap() {
            after = m["id"].as_i64().unwrap();
            seen.push(after);
        }
        if page["hasMore"] == false {
            break;
        }
    }
    let seen_set: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen_set.len(), seen.len(), "no duplicates");
    for id in &acked {
        assert!(seen_set.contains(id), "acknowledged message {id} lost");
    }
}

/// The PG harness itself: one database per data dir, shared by every holder
/// of that dir, and gone once the last one lets go.
#[tokio::test]
async fn test_databases_are_shared_per_data_dir_and_dropped_after_use() {
    if !is_postgres() {
        return; // the harness's PostgreSQL side
    }
    let admin = pg_connect(&pg_url("postgres")).await;
    let count = |name: String| {
        let admin = &admin;
        async move {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_database WHERE datname = $1",
                    &[&name],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let db = database_for(dir.path()).expect("a database in PG mode");
    let again = database_for(dir.path()).unwrap();
    assert!(Arc::ptr_eq(&db, &again), "one database per data dir");
    assert!(db.name.starts_with("natter_test_"), "{}", db.name);
    assert_eq!(count(db.name.clone()).await, 1);
    let other = database_for(tempfile::tempdir().unwrap().path()).unwrap();
    assert_ne!(other.name, db.name);
    let name = db.name.clone();
    drop(db);
    assert_eq!(count(name.clone()).await, 1, "still held");
    drop(again);
    assert_eq!(count(name).await, 0, "dropped with its last holder");
    let other_name = other.name.clone();
    drop(other);
    assert_eq!(count(other_name).await, 0);
}

/// A write that fails after others were queued with it (on PostgreSQL the
/// writer pipelines writes whose results nobody reads, so their errors show
/// up later) takes back the whole operation and nothing else: the reader's
/// position does not move, other people's sends go on, and once the fault
/// is gone the same request works.
#[tokio::test]
async fn a_failing_queued_write_rolls_back_its_operation_only() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    app.send(&bob, chat, "one").await;
    let last = app.send(&bob, chat, "two").await["id"].as_i64().unwrap();
    let unread = |chats: &Value| {
        chats["items"]
            .as_array()
            .unwrap_or_else(|| panic!("a chat list: {chats}"))
            .iter()
            .find(|c| c["id"] == chat)
            .map(|c| c["unreadCount"].clone())
    };
    // Every new receipt mark fails: a CHECK no row meets on PostgreSQL, a
    // trigger on SQLite (which has no ADD CONSTRAINT).
    let (break_marks, mend_marks) = if is_postgres() {
        (
            "ALTER TABLE receipt_marks ADD CONSTRAINT test_no_marks CHECK (up_to < 0) NOT VALID",
            "ALTER TABLE receipt_marks DROP CONSTRAINT test_no_marks",
        )
    } else {
        (
            "CREATE TRIGGER test_no_marks BEFORE INSERT ON receipt_marks \
             BEGIN SELECT RAISE(ABORT, 'no marks'); END",
            "DROP TRIGGER test_no_marks",
        )
    };
    app.exec_sql(break_marks).await;
    let (status, body) = app
        .post(
            &format!("/chat/{chat}/read"),
            &ana,
            json!({"upToMessageId": last}),
        )
        .await;
    assert!(
        status.is_server_error(),
        "read with marks failing: {status} {body}"
    );
    // others' writes are not affected (a send writes no receipt mark when
    // nothing from others is unread)
    let (status, body) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &bob,
            json!({"messageType": "TEXT", "content": "three"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let three = body["id"].clone();
    app.exec_sql(mend_marks).await;
    // (listing chats marks them delivered, a receipt mark: only now)
    let (_, chats) = app.get("/chat", &ana).await;
    assert_eq!(
        unread(&chats),
        Some(json!(3)),
        "the failed read moved nothing: {chats}"
    );
    let (status, body) = app
        .post(
            &format!("/chat/{chat}/read"),
            &ana,
            json!({"upToMessageId": three}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unreadCount"], 0, "{body}");
    let (_, chats) = app.get("/chat", &ana).await;
    assert_eq!(unread(&chats), Some(json!(0)), "{chats}");
}

/// Many sends at once into one group (on PostgreSQL they are written
/// together, one statement per kind of write): each member's sends keep
/// their order, a `clientId` sent twice at once is stored once and both
/// answers name the same message, an outsider's send in the same rush gets
/// 404 and stores nothing, and the history holds exactly what was
/// acknowledged, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rush_of_sends_is_stored_once_each_in_order() {
    let app = spawn_with(|a| a.send_rate = 0).await;
    let members = [
        app.register("Ana").await,
        app.register("Bob").await,
        app.register("Cy").await,
    ];
    let outsider = app.register("Eve").await;
    let chat = app
        .group(&members[0], &[&members[1], &members[2]], "rush")
        .await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for (m, member) in members.iter().enumerate() {
        let app = app.clone();
        let member = member.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..15 {
                // two sends with one clientId, at once
                let body = json!({"messageType": "TEXT", "content": format!("{m}-{k}"),
                                  "clientId": format!("rush-{m}-{k}")});
                let path = format!("/chat/{chat}/messages");
                let (a, b) = tokio::join!(
                    app.post(&path, &member, body.clone()),
                    app.post(&path, &member, body)
                );
                assert!(a.0.is_success() && b.0.is_success(), "{a:?} {b:?}");
                assert_eq!(a.1["id"], b.1["id"], "one message for one clientId");
                ids.push(a.1["id"].as_i64().unwrap());
            }
            ids
        }));
    }
    let intruder = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for k in 0..5 {
                let (status, _) = app
                    .post(
                        &format!("/chat/{chat}/messages"),
                        &outsider,
                        json!({"messageType": "TEXT", "content": format!("intruder {k}")}),
                    )
                    .await;
                statuses.push(status);
            }
            statuses
        })
    };
    let mut acked = HashSet::new();
    for task in tasks {
        let ids = task.await.unwrap();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "in send order: {ids:?}"
        );
        acked.extend(ids);
    }
    for status in intruder.await.unwrap() {
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(acked.len(), 45);
    let (status, page) = app
        .get(&format!("/chat/{chat}/messages?limit=100"), &members[1])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let stored: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["messageType"] != "SYSTEM")
        .collect();
    let ids: HashSet<i64> = stored.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(stored.len(), 45, "each once: {page}");
    assert_eq!(ids, acked);
    assert!(stored.iter().all(|m| !m["content"]
        .as_str()
        .unwrap_or_default()
        .starts_with("intruder")));
}
