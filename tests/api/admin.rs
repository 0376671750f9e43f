//! `natter user ...`, `natter backup`, `natter restore` against a live data dir.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// Runs the real binary; returns (success, stdout + stderr).
pub(crate) async fn natter(args: Vec<String>) -> (bool, String) {
    natter_with_env(args, &[]).await
}

/// Runs the real binary with extra environment variables.
pub(crate) async fn natter_with_env(args: Vec<String>, env: &[(&str, &str)]) -> (bool, String) {
    let mut args = args;
    // On the PostgreSQL pass, admin commands name the data dir's database
    // (a mistyped dir has none: the command must find no database there).
    if let Some(at) = args.iter().position(|a| a == "--data-dir") {
        let url = args.get(at + 1).and_then(|dir| {
            crate::helpers::existing_database_for(std::path::Path::new(dir))
                .map(|db| db.url.clone())
        });
        if let Some(url) = url {
            if args.first().is_some_and(|c| c == "user") {
                args.extend(["--database".to_string(), url]);
            }
        }
    }
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
            .args(&args)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run natter");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

/// The names in a folder, sorted.
fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

fn dir_arg(app: &TestApp) -> String {
    app.dir.path().to_string_lossy().to_string()
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, serde_json::Value) {
    app.call(
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_work_while_the_server_runs() {
    let app = spawn_app().await;
    let d = dir_arg(&app);
    let (ok, out) = natter(vec![
        "user".into(),
        "add".into(),
        "--data-dir".into(),
        d.clone(),
        "--email".into(),
        "ops@example.com".into(),
        "--name".into(),
        "Ops".into(),
        "--password".into(),
        "first password".into(),
        "--admin".into(),
    ])
    .await;
    assert!(ok, "{out}");
    let (status, session) = login(&app, "ops@example.com", "first password").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let old_token = session["token"].as_str().unwrap().to_string();

    let (ok, out) = natter(vec![
        "user".into(),
        "list".into(),
        "--data-dir".into(),
        d.clone(),
    ])
    .await;
    assert!(
        ok && out.contains("ops@example.com") && out.contains("yes"),
        "{out}"
    );

    // a bad password is refused with a clear message, nothing created
    let (ok, out) = natter(vec![
        "user".into(),
        "add".into(),
        "--data-dir".into(),
        d.clone(),
        "--email".into(),
        "x@example.com".into(),
        "--name".into(),
        "X".into(),
        "--password".into(),
        "short".into(),
    ])
    .await;
    assert!(!ok && out.contains("password"), "{out}");

    // reset-password: the old password and the old token stop working
    let (ok, out) = natter(vec![
        "user".into(),
        "reset-password".into(),
        "--data-dir".into(),
        d.clone(),
        "--email".into(),
        "OPS@example.com".into(),
        "--password".into(),
        "second password".into(),
    ])
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        login(&app, "ops@example.com", "first password").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::GET, "/auth/me", Some(&old_token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, session) = login(&app, "ops@example.com", "second password").await;
    assert_eq!(status, StatusCode::OK);
    let ops = TestUser {
        id: session["user"]["id"].as_i64().unwrap(),
        token: session["token"].as_str().unwrap().into(),
        email: "ops@example.com".into(),
        name: "Ops".into(),
    };

    // disable: login refused, open sockets closed, enable brings it back
    let mut ws = app.ws(&ops).await;
    let (ok, out) = natter(vec![
        "user".into(),
        "disable".into(),
        "--data-dir".into(),
        d.clone(),
        "--email".into(),
        "ops@example.com".into(),
    ])
    .await;
    assert!(ok, "{out}");
    let mut closed = false;
    for _ in 0..10 {
        match ws.next_frame_within(Duration::from_secs(1)).await {
            None => {
                closed = true;
                break;
            }
            Some(_) => continue,
        }
    }
    assert!(closed, "the disabled user's socket was closed");
    assert_eq!(
        login(&app, "ops@example.com", "second password").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::GET, "/auth/me", Some(&ops.token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (ok, _) = natter(vec![
        "user".into(),
        "enable".into(),
        "--data-dir".into(),
        d.clone(),
        "--email".into(),
        "ops@example.com".into(),
    ])
    .await;
    assert!(ok);
    assert_eq!(
        login(&app, "ops@example.com", "second password").await.0,
        StatusCode::OK
    );

    let (ok, out) = natter(vec![
        "user".into(),
        "disable".into(),
        "--data-dir".into(),
        d,
        "--email".into(),
        "nobody@example.com".into(),
    ])
    .await;
    assert!(!ok && out.contains("nobody@example.com"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_then_restore() {
    if is_postgres() {
        return; // `natter backup`/`restore` copy the SQLite file (PostgreSQL: pg_dump)
    }
    let app = Arc::new(spawn_app().await);
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    for i in 0..50 {
        app.send(&alice, chat, &format!("before {i}")).await;
    }
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (app, alice, acked, stop) = (app.clone(), alice.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            for i in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let m = app.send(&alice, chat, &format!("during {i}")).await;
                acked.lock().unwrap().push(m["id"].as_i64().unwrap());
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let acked_before: HashSet<i64> = acked.lock().unwrap().iter().copied().collect();
    let backup_dir = tempfile::tempdir().unwrap();
    let file = backup_dir.path().join("natter-backup.db");
    let (ok, out) = natter(vec![
        "backup".into(),
        file.to_string_lossy().to_string(),
        "--data-dir".into(),
        dir_arg(&app),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("integrity ok"), "{out}");
    assert_eq!(
        dir_entries(backup_dir.path()),
        ["natter-backup.db"],
        "a backup is one self-contained file"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    sender.await.unwrap();

    let copy = rusqlite::Connection::open(&file).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let in_backup: HashSet<i64> = copy
        .prepare("SELECT id FROM messages")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        acked_before.len() > 5,
        "the sender was busy ({})",
        acked_before.len()
    );
    assert!(
        acked_before.is_subset(&in_backup),
        "every message acknowledged before the backup is in it"
    );
    let backup_count = in_backup.len();
    drop(copy);

    // restore needs the server stopped
    let (ok, out) = natter(vec![
        "restore".into(),
        file.to_string_lossy().to_string(),
        "--data-dir".into(),
        dir_arg(&app),
    ])
    .await;
    assert!(!ok && out.contains("running"), "{out}");
    let app = Arc::try_unwrap(app).ok().expect("only owner");
    let total_before_restore = {
        let (_, h) = app
            .get(&format!("/chat/{chat}/messages?limit=1"), &alice)
            .await;
        h["items"][0]["id"].as_i64().unwrap()
    };
    let dir = app.stop().await;
    let (ok, out) = natter(vec![
        "restore".into(),
        file.to_string_lossy().to_string(),
        "--data-dir".into(),
        dir.path().to_string_lossy().to_string(),
    ])
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        dir_entries(backup_dir.path()),
        ["natter-backup.db"],
        "restore leaves nothing beside the file it read"
    );
    let app = spawn_in(dir, |_| {}).await;
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = app
            .get(
                &format!("/chat/{chat}/messages?after={after}&limit=200"),
                &alice,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let got: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        if let Some(l) = got.last() {
            after = *l;
        }
        ids.extend(got);
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(ids.len(), backup_count, "restored exactly the backup");
    assert!(*ids.last().unwrap() <= total_before_restore);
    assert!(Path::new(&app.dir.path()).read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("natter.db.before-restore-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_admins_manage_accounts_over_the_api() {
    let app = spawn_app().await;
    let (ok, out) = natter(vec![
        "user".into(),
        "add".into(),
        "--data-dir".into(),
        dir_arg(&app),
        "--email".into(),
        "root@example.com".into(),
        "--name".into(),
        "Root".into(),
        "--password".into(),
        "admin password".into(),
        "--admin".into(),
    ])
    .await;
    assert!(ok, "{out}");
    let (_, session) = login(&app, "root@example.com", "admin password").await;
    let root = TestUser {
        id: session["user"]["id"].as_i64().unwrap(),
        token: session["token"].as_str().unwrap().into(),
        email: "root@example.com".into(),
        name: "Root".into(),
    };
    let bob = app.register("Bob").await;

    let (status, body) = app.get("/admin/users", &bob).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (s, _) = app
        .patch(
            &format!("/admin/users/{}", root.id),
            &bob,
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (status, body) = app.get("/admin/users", &root).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .any(|u| u["email"] == bob.email && u["disabled"] == false && u["isAdmin"] == false));

    let mut bob_ws = app.ws(&bob).await;
    let (s, u) = app
        .patch(
            &format!("/admin/users/{}", bob.id),
            &root,
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["disabled"], true);
    let mut closed = false;
    for _ in 0..5 {
        if bob_ws
            .next_frame_within(Duration::from_secs(1))
            .await
            .is_none()
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the disabled user's socket is closed at once");
    assert_eq!(
        login(&app, &bob.email, "correct horse").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::GET, "/auth/me", Some(&bob.token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = app
        .patch(
            &format!("/admin/users/{}", bob.id),
            &root,
            json!({"disabled": false, "isAdmin": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        login(&app, &bob.email, "correct horse").await.0,
        StatusCode::OK
    );

    let (s, _) = app
        .patch(
            &format!("/admin/users/{}", root.id),
            &root,
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .patch("/admin/users/999999", &root, json!({"disabled": true}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .patch(
            &format!("/admin/users/{}", bob.id),
            &root,
            json!({"disabled": "yes"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// A new database is created with 1 KiB pages in WAL mode: each commit
/// rewrites every page it touched, and a message touches a handful of
/// index pages, so small pages cut the writer's work (BENCHMARKS.md).
#[tokio::test]
async fn new_databases_use_small_pages_in_wal_mode() {
    if is_postgres() {
        return; // SQLite file settings
    }
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    app.send(&alice, chat, "hello").await;
    let db = rusqlite::Connection::open(app.dir.path().join("natter.db")).unwrap();
    let page_size: i64 = db.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 1024);
    assert_eq!(mode, "wal");
}
