//! `natter migrate-store`: a realistic SQLite store built through the API
//! (10,000 messages, uploads, edits, deletes, receipts, hidden messages,
//! a cleared chat, a removed member) moves to a fresh PostgreSQL database
//! with the real binary, and a server on PostgreSQL answers the same
//! history, chat lists, `/sync` and files. Plus the refusals: a target that
//! is not empty, wrong schemes, a missing or old source, a running server.
//!
//! Runs once, in the SQLite pass (the source is SQLite by definition);
//! the target is always a fresh PostgreSQL database.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::multipart::Part;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Messages in the moved store.
const MESSAGES: usize = 10_000;

fn tune(a: &mut natter::config::ServeArgs) {
    a.send_rate = 0;
    a.register_rate = 0;
    a.upload_rate = 0;
}

/// Runs the real binary with `args`; bounded to 120 s.
fn natter(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("NATTER_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start natter");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "natter {args:?} did not finish in 120 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn migrate(from: &Path, to: &str) -> Output {
    let from = format!("sqlite://{}", from.display());
    let to = to.to_string();
    tokio::task::spawn_blocking(move || natter(&["migrate-store", "--from", &from, "--to", &to]))
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a refusal: non-zero exit, one `error:` line naming `needle`.
fn assert_refused(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} in {stderr}");
}

fn id(m: &Value) -> i64 {
    m["id"].as_i64().expect("id")
}

/// Presence (`online`, `lastSeen`) is live state, not stored history:
/// removed everywhere before comparing.
fn strip_volatile(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("online");
            map.remove("lastSeen");
            map.values_mut().for_each(strip_volatile);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

/// The first place two JSON values differ, for a readable failure.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = first_difference(va, vb, &format!("{path}/{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}/{k}: only before")),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}/{k}: only after"))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(va, vb, &format!("{path}/{i}")) {
                    return Some(d);
                }
            }
            (x.len() != y.len())
                .then(|| format!("{path}: {} items before, {} after", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: {a} before, {b} after")),
    }
}

/// What the API shows `users`: profile, chat list, every chat, history
/// pages in both directions, receipts of `receipts_of`, and the whole
/// `/sync` from 0.
async fn snapshot(
    app: &TestApp,
    users: &[&TestUser],
    extra_chats: &[i64],
    mid: i64,
    receipts_of: &[(i64, i64)],
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for user in users {
        let get = async |path: String| {
            let (status, mut body) = app.get(&path, user).await;
            strip_volatile(&mut body);
            (status, body)
        };
        let key = |path: &str| format!("{} {path}", user.name);
        let (status, me) = get("/auth/me".into()).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        out.insert(key("/auth/me"), me);
        let (status, list) = get("/chat?page=1&limit=50".into()).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let mut chats: Vec<i64> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(id)
            .collect();
        out.insert(key("/chat"), list);
        chats.extend_from_slice(extra_chats);
        chats.sort_unstable();
        chats.dedup();
        for chat in chats {
            for path in [
                format!("/chat/{chat}"),
                format!("/chat/{chat}/messages"),
                format!("/chat/{chat}/messages?page=2&limit=50"),
                format!("/chat/{chat}/messages?page=20&limit=100"),
                format!("/chat/{chat}/messages?after=0&limit=200"),
                format!("/chat/{chat}/messages?before={mid}&limit=200"),
                format!("/chat/{chat}/messages?after={mid}&limit=200"),
            ] {
                let (status, body) = get(path.clone()).await;
                out.insert(key(&path), json!({"status": status.as_u16(), "body": body}));
            }
        }
        for (chat, message) in receipts_of {
            let path = format!("/chat/{chat}/messages/{message}/receipts");
            let (status, body) = get(path.clone()).await;
            out.insert(key(&path), json!({"status": status.as_u16(), "body": body}));
        }
        // the whole change log, page by page
        let mut after = json!(0);
        let mut items = Vec::new();
        for page in 0.. {
            assert!(page < 500, "/sync did not drain");
            let cursor = match &after {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let (status, body) = get(format!("/sync?after={cursor}&limit=200")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            items.extend(body["items"].as_array().expect("items").iter().cloned());
            after = body["cursor"].clone();
            if body["hasMore"] != true {
                break;
            }
        }
        out.insert(key("/sync"), json!({"items": items, "cursor": after}));
    }
    out
}

fn assert_same(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>, what: &str) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{what}: the same requests"
    );
    for (key, b) in before {
        let a = &after[key];
        if let Some(d) = first_difference(b, a, "") {
            panic!("{what}: {key} differs at {d}");
        }
    }
}

/// Sends `jobs` (sender, chat, text) over REST, 16 at a time; returns the
/// stored ids in job order.
async fn send_all(app: &TestApp, jobs: Vec<(TestUser, i64, String)>) -> Vec<i64> {
    let client = app.client.clone();
    let base = app.base.clone();
    let results: Vec<(usize, i64)> = futures_util::stream::iter(jobs.into_iter().enumerate())
        .map(|(i, (user, chat, content))| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let resp = client
                    .post(format!("{base}/chat/{chat}/messages"))
                    .bearer_auth(&user.token)
                    .json(&json!({"messageType": "TEXT", "content": content}))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), StatusCode::CREATED);
                let body: Value = resp.json().await.expect("json");
                (i, id(&body))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut ids = vec![0; results.len()];
    for (i, m) in results {
        ids[i] = m;
    }
    ids
}

async fn download(app: &TestApp, user: &TestUser, url: &str) -> Vec<u8> {
    let resp = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    resp.bytes().await.expect("bytes").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_store_moves_to_postgres_and_the_api_shows_the_same_history() {
    if is_postgres() {
        return;
    }
    let started = Instant::now();
    let app = spawn_with(tune).await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let cy = app.register("Cy").await;
    let dee = app.register("Dee").await;
    let eve = app.register("Eve").await;
    let d1 = app.direct_chat(&ana, &bob).await;
    let d2 = app.direct_chat(&ana, &cy).await;
    let g = app.group(&ana, &[&bob, &cy, &dee, &eve], "Team").await;
    let mut sent = 0usize;

    // an avatar, an image and a file
    let avatar = upload_image(&app, &ana).await;
    let (status, body) = app
        .patch("/auth/me", &ana, json!({"avatarUrl": avatar}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let photo = upload_image(&app, &ana).await;
    let (status, image_msg) = app
        .post(
            &format!("/chat/{g}/messages"),
            &ana,
            json!({"messageType": "IMAGE", "fileUrl": photo}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{image_msg}");
    let file_bytes = b"minutes of the meeting\n".repeat(40);
    let (status, file) = upload_part(
        &app,
        &bob,
        Part::bytes(file_bytes.clone()).file_name("minutes.txt"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let file_url = file["fileUrl"].as_str().unwrap().to_string();
    let (status, file_msg) = app
        .post(
            &format!("/chat/{d1}/messages"),
            &bob,
            json!({"messageType": "FILE", "fileUrl": file_url, "fileName": "minutes.txt"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file_msg}");
    let (status, keyed) = app
        .post(
            &format!("/chat/{g}/messages"),
            &dee,
            json!({"messageType": "TEXT", "content": "once", "clientId": "dee-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{keyed}");
    // a voice message, played (its columns and message_plays move too)
    let mut recording = natter::audio::webm_head_for_tests(&[2]);
    recording.extend([7u8; 500]);
    let (status, rec) = upload_part(&app, &bob, Part::bytes(recording).file_name("v.weba")).await;
    assert_eq!(status, StatusCode::CREATED, "{rec}");
    let (status, voice) = app
        .post(
            &format!("/chat/{d1}/messages"),
            &bob,
            json!({"messageType": "FILE", "fileUrl": rec["fileUrl"], "durationMs": 1800, "waveform": "AQIDBAUG"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{voice}");
    let (status, played) = app
        .post(
            &format!("/chat/{d1}/played"),
            &ana,
            json!({"messageId": voice["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{played}");
    sent += 4;

    // the bulk: most in the group, then the two direct chats
    let group_senders = [&ana, &bob, &cy, &dee, &eve];
    let mut jobs = Vec::new();
    for i in 0..MESSAGES - sent - 6 {
        let job = match i % 10 {
            0..=5 => (
                group_senders[i % 5].clone(),
                g,
                format!("group message {i}"),
            ),
            6..=8 => (
                [&ana, &bob][i % 2].clone(),
                d1,
                format!("direct message {i}"),
            ),
            _ => ([&ana, &cy][i % 2].clone(), d2, format!("to cy {i}")),
        };
        jobs.push(job);
    }
    let bulk_started = Instant::now();
    let bulk = send_all(&app, jobs.clone()).await;
    sent += bulk.len();
    let bulk_secs = bulk_started.elapsed().as_secs_f64();
    let in_chat = |chat: i64, sender: i64| -> Vec<i64> {
        jobs.iter()
            .zip(&bulk)
            .filter(|((u, c, _), _)| *c == chat && u.id == sender)
            .map(|(_, m)| *m)
            .collect()
    };
    let mid = bulk[bulk.len() / 2];

    // edits, deletes (by the sender and by a group admin), a reply, a hidden
    // message, receipts, a cleared chat and a removed member
    let ana_d1 = in_chat(d1, ana.id);
    let (status, body) = app
        .patch(
            &format!("/chat/{d1}/messages/{}", ana_d1[3]),
            &ana,
            json!({"content": "edited"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bob_d1 = in_chat(d1, bob.id);
    let (status, body) = app
        .delete(&format!("/chat/{d1}/messages/{}", bob_d1[5]), &bob)
        .await;
    assert!(status.is_success(), "{body}");
    let cy_g = in_chat(g, cy.id);
    let (status, body) = app
        .delete(&format!("/chat/{g}/messages/{}", cy_g[7]), &ana)
        .await;
    assert!(status.is_success(), "{body}");
    let bob_g = in_chat(g, bob.id);
    let (status, body) = app
        .delete(&format!("/chat/{g}/messages/{}?for=me", bob_g[9]), &cy)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, reply) = app
        .post(
            &format!("/chat/{g}/messages"),
            &cy,
            json!({"messageType": "TEXT", "content": "re", "replyToId": bob_g[10]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, body) = app
        .post(
            &format!("/chat/{d1}/read"),
            &bob,
            json!({"upToMessageId": mid}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            &format!("/chat/{g}/read"),
            &cy,
            json!({"upToMessageId": id(&reply)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            &format!("/chat/{g}/read"),
            &dee,
            json!({"messageIds": [id(&image_msg), bob_g[2]]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post(&format!("/chat/{d2}/clear"), &cy, json!({})).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .delete(&format!("/chat/{g}/participants/{}", eve.id), &ana)
        .await;
    assert!(status.is_success(), "{body}");
    let mut last = Vec::new();
    for (user, chat, content) in [
        (&cy, d2, "after the clear"),
        (&ana, g, "after eve left"),
        (&bob, g, "bye"),
        (&ana, d1, "last one"),
        (&bob, d1, "to be deleted"),
    ] {
        last.push(id(&app.send(user, chat, content).await));
    }
    sent += 6;
    let (status, body) = app
        .delete(&format!("/chat/{d1}/messages/{}", last[4]), &bob)
        .await;
    assert!(status.is_success(), "{body}");
    assert_eq!(sent, MESSAGES);

    // what the API shows, once it has settled (fetching marks delivered)
    let users = [&ana, &bob, &cy, &dee, &eve];
    let receipts = [
        (g, id(&image_msg)),
        (g, bob_g[2]),
        (d1, ana_d1[3]),
        (d1, id(&file_msg)),
    ];
    let mut before = snapshot(&app, &users, &[g], mid, &receipts).await;
    for round in 0.. {
        assert!(round < 4, "the API did not settle");
        let again = snapshot(&app, &users, &[g], mid, &receipts).await;
        if again == before {
            break;
        }
        before = again;
    }
    let image_bytes_before = download(&app, &ana, photo.as_str()).await;
    let file_bytes_before = download(&app, &ana, &file_url).await;
    assert_eq!(file_bytes_before, file_bytes);
    let ana_sync = &before["Ana /sync"];
    let old_cursor = ana_sync["cursor"].clone();
    let old_sync_len = ana_sync["items"].as_array().unwrap().len();
    assert!(
        old_sync_len > MESSAGES * 8 / 10,
        "ana's /sync: {old_sync_len}"
    );

    // a running server is not copied from
    let target = TestDb::create();
    let db_file = app.dir.path().join("natter.db");
    let out = migrate(&db_file, &target.url).await;
    assert_refused(&out, "another natter is running");

    let dir = app.stop().await;
    let (max_message, max_event, stored): (i64, i64, i64) = {
        let conn = rusqlite::Connection::open(&db_file).unwrap();
        let m = conn
            .query_row("SELECT max(id) FROM messages", [], |r| r.get(0))
            .unwrap();
        let e = conn
            .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
            .unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        // plus the group notes (SYSTEM messages) of the creation and removal
        assert!(n >= MESSAGES as i64, "{n} messages");
        (m, e, n)
    };

    let move_started = Instant::now();
    let out = migrate(&db_file, &target.url).await;
    let move_secs = move_started.elapsed().as_secs_f64();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "migrate-store failed: {}{stdout}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "{stored} rows (SQLite {stored}, PostgreSQL {stored})"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("uploads"), "{stdout}");
    assert!(stdout.contains("--database"), "{stdout}");
    eprintln!("{stdout}");

    // the same data dir, now on PostgreSQL
    let mut dir = dir;
    dir.db = Some(target.clone());
    let app = spawn_in(dir, tune).await;
    let after = snapshot(&app, &users, &[g], mid, &receipts).await;
    assert_same(&before, &after, "after the move");
    assert_eq!(
        download(&app, &ana, photo.as_str()).await,
        image_bytes_before
    );
    assert_eq!(download(&app, &ana, &file_url).await, file_bytes);

    // new rows get new ids, and /sync goes on from the old cursor
    let new = app.send(&bob, g, "first on PostgreSQL").await;
    assert!(id(&new) > max_message, "{} > {max_message}", id(&new));
    let cursor = match &old_cursor {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let (status, page) = app
        .get(&format!("/sync?after={cursor}&limit=200"), &ana)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["event"], "message:new");
    assert_eq!(items[0]["data"]["id"], new["id"]);
    let event_cursor = match &page["cursor"] {
        Value::String(s) => s.parse::<i64>().unwrap(),
        v => v.as_i64().unwrap(),
    };
    assert!(event_cursor > max_event, "{event_cursor} > {max_event}");
    let (status, body) = app.get(&format!("/chat/{g}/messages?limit=1"), &ana).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["id"], new["id"]);
    let user = app.register("Fay").await;
    assert!(user.id > eve.id);
    let (status, created) = app
        .post(
            "/chat",
            &user,
            json!({"participantIds": [user.id, ana.id], "isGroup": false}),
        )
        .await;
    assert!(status.is_success(), "{created}");
    assert!(id(&created) > g);
    app.stop().await;
    eprintln!(
        "migrate_store: {stored} messages stored (bulk sends {bulk_secs:.1} s), moved in {move_secs:.1} s, \
         test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_refuses_what_it_cannot_copy_safely() {
    if is_postgres() {
        return;
    }
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    app.send(
        &ana,
        app.direct_chat(&ana, &app.register("Bob").await).await,
        "hi",
    )
    .await;
    let dir = app.stop().await;
    let source = dir.path().join("natter.db");

    // schemes and paths
    let target = TestDb::create();
    let out = tokio::task::spawn_blocking({
        let (from, to) = (source.display().to_string(), target.url.clone());
        move || natter(&["migrate-store", "--from", &from, "--to", &to])
    })
    .await
    .unwrap();
    assert_refused(&out, "not an SQLite URL");
    let out = migrate(&source, "mysql://root@127.0.0.1/natter").await;
    assert_refused(&out, "not a PostgreSQL URL");
    let out = migrate(&dir.path().join("nope.db"), &target.url).await;
    assert_refused(&out, "no SQLite database");

    // a source of an older schema: migrate it with serve first
    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch(include_str!("../fixtures/schema_v1.sql"))
        .unwrap();
    let out = migrate(&old, &target.url).await;
    assert_refused(&out, "natter serve");

    // another program's tables: refused, left as they were
    let client = pg_connect(&target.url).await;
    client
        .batch_execute("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (7)")
        .await
        .unwrap();
    let out = migrate(&source, &target.url).await;
    assert_refused(&out, "empty database only");
    assert!(
        text(&out.stderr).contains("invoices"),
        "{}",
        text(&out.stderr)
    );
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(tables, ["invoices"]);
    let n: i64 = client
        .query_one("SELECT count(*) FROM invoices", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // a natter database with rows: refused, left as it was
    let used = TestDb::create();
    let mut pg_dir = DataDir::from(tempfile::tempdir().unwrap());
    pg_dir.db = Some(used.clone());
    let pg_app = spawn_in(pg_dir, |_| {}).await;
    pg_app.register("Zed").await;
    let _pg_dir = pg_app.stop().await;
    let out = migrate(&source, &used.url).await;
    assert_refused(&out, "already holds natter data (1 users)");
    let client = pg_connect(&used.url).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // an empty natter schema (a serve that started once) is fine; ids are
    // never reused, even those of rows that are gone (retention): the
    // sequences continue after SQLite's, not after max(id)
    let handed_out: i64 = {
        let conn = rusqlite::Connection::open(&source).unwrap();
        conn.execute_batch("DELETE FROM events WHERE id = (SELECT max(id) FROM events)")
            .unwrap();
        conn.query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let fresh = TestDb::create();
    let mut fresh_dir = DataDir::from(tempfile::tempdir().unwrap());
    fresh_dir.db = Some(fresh.clone());
    let _fresh_dir = spawn_in(fresh_dir, |_| {}).await.stop().await;
    let out = migrate(&source, &fresh.url).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let client = pg_connect(&fresh.url).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let next: i64 = client
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('events', 'id'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, handed_out + 1);
    drop(dir);
}

/// A PostgreSQL database at schema version 2 (the first with PostgreSQL)
/// is migrated in place on start, keeping its rows.
#[tokio::test]
async fn a_version_2_postgres_database_migrates_in_place() {
    if !is_postgres() {
        return;
    }
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    // Back to version 2: without what step 3 adds.
    app.exec_sql(
        "DROP INDEX message_search;
         DROP TABLE message_reactions;
         ALTER TABLE messages DROP COLUMN reactions, DROP COLUMN is_forwarded;
         ALTER TABLE events DROP COLUMN data;
         DROP TABLE push_subscriptions;
         ALTER TABLE chat_participants DROP COLUMN muted_until;
         DROP TABLE message_plays;
         DROP INDEX messages_by_preview_upload;
         ALTER TABLE messages DROP COLUMN duration_ms, DROP COLUMN waveform,
             DROP COLUMN played_by, DROP COLUMN link_preview, DROP COLUMN preview_upload_id;
         UPDATE natter_meta SET value = '2' WHERE key = 'schema_version';",
    )
    .await;
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let (status, me) = app.get("/auth/me", &ana).await;
    assert_eq!(status, 200, "rows and tokens kept: {me}");
    assert_eq!(
        app.query_i64("SELECT COUNT(*) FROM push_subscriptions")
            .await,
        0
    );
    assert_eq!(
        app.query_i64("SELECT COUNT(muted_until) FROM chat_participants")
            .await,
        0
    );
    assert_eq!(
        app.query_i64("SELECT CAST(value AS BIGINT) FROM natter_meta WHERE key = 'schema_version'")
            .await,
        natter::db::migrate::CURRENT_VERSION
    );
}

/// A PostgreSQL database at schema version 3 (before voice messages and
/// link previews) is migrated in place on start, keeping its rows, and the
/// new columns and table work.
#[tokio::test]
async fn a_version_3_postgres_database_migrates_in_place() {
    if !is_postgres() {
        return;
    }
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    app.send(&ana, chat, "kept").await;
    // Back to version 3: without what steps 4 and 5 add.
    app.exec_sql(
        "DROP INDEX message_search;
         DROP TABLE message_reactions;
         ALTER TABLE messages DROP COLUMN reactions, DROP COLUMN is_forwarded;
         ALTER TABLE events DROP COLUMN data;
         DROP TABLE message_plays;
         DROP INDEX messages_by_preview_upload;
         ALTER TABLE messages DROP COLUMN duration_ms, DROP COLUMN waveform,
             DROP COLUMN played_by, DROP COLUMN link_preview, DROP COLUMN preview_upload_id;
         UPDATE natter_meta SET value = '3' WHERE key = 'schema_version';",
    )
    .await;
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let (status, page) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["content"], "kept");
    assert_eq!(page["items"][0]["playedBy"], json!([]));
    assert_eq!(page["items"][0]["linkPreview"], Value::Null);
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM message_plays").await, 0);
    assert_eq!(
        app.query_i64("SELECT COUNT(duration_ms) + COUNT(preview_upload_id) FROM messages")
            .await,
        0
    );
    assert_eq!(
        app.query_i64("SELECT CAST(value AS BIGINT) FROM natter_meta WHERE key = 'schema_version'")
            .await,
        natter::db::migrate::CURRENT_VERSION
    );
}

/// A PostgreSQL database at schema version 4 (before reactions and
/// forwarding) is migrated in place on start, keeping its rows.
#[tokio::test]
async fn a_version_4_postgres_database_migrates_in_place() {
    if !is_postgres() {
        return;
    }
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    app.send(&ana, chat, "kept").await;
    app.exec_sql(&format!(
        "{}UPDATE natter_meta SET value = '4' WHERE key = 'schema_version';",
        "DROP INDEX message_search;
         DROP TABLE message_reactions;
         ALTER TABLE messages DROP COLUMN reactions, DROP COLUMN is_forwarded;
         ALTER TABLE events DROP COLUMN data;
         "
    ))
    .await;
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let (status, page) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["content"], "kept");
    assert_eq!(page["items"][0]["reactions"], json!([]));
    assert_eq!(page["items"][0]["isForwarded"], false);
    // Step 6: the message kept from before is found by search.
    let (status, found) = app.get("/search?q=kept", &bob).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"][0]["message"]["content"], "kept");
    assert_eq!(
        app.query_i64("SELECT CAST(value AS BIGINT) FROM natter_meta WHERE key = 'schema_version'")
            .await,
        6
    );
}
