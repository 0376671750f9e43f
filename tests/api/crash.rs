//! Crash safety and shutdown of the real binary: `kill -9` while clients
//! send (an acknowledged message is never lost or doubled), and SIGTERM
//! (WebSockets closed with 1001, exit 0).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::{spawn_binary, Server};

fn start(dir: &std::path::Path) -> Server {
    start_with(dir, &[])
}

/// Starts the binary on `dir` with these extra `serve` flags; returns once
/// it logged its address.
pub(crate) fn start_with(dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec!["--send-rate", "0", "--login-rate", "0"];
    args.extend_from_slice(extra);
    spawn_binary(dir, &args, |_| {})
}

/// The child's exit status; fails the test if it is still running 10 s
/// after `since` (a graceful stop takes well under that).
async fn exit_within_10s(server: &mut Server, since: Instant) -> std::process::ExitStatus {
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "exits within a few seconds"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) fn kill9(server: &mut Server) {
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Result<(u16, Value), reqwest::Error> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let (_, a) = post(
        &client,
        format!("{}/auth/register", server.base),
        None,
        json!({"email": "a@crash.io", "password": "password1", "name": "A"}),
    )
    .await
    .unwrap();
    let (_, b) = post(
        &client,
        format!("{}/auth/register", server.base),
        None,
        json!({"email": "b@crash.io", "password": "password1", "name": "B"}),
    )
    .await
    .unwrap();
    let token = a["token"].as_str().unwrap().to_string();
    let (_, chat) = post(
        &client,
        format!("{}/chat", server.base),
        Some(&token),
        json!({"participantIds": [b["user"]["id"]], "isGroup": false}),
    )
    .await
    .unwrap();
    let chat = chat["id"].as_i64().unwrap();

    let base = Arc::new(RwLock::new(server.base.clone()));
    let acked: Arc<std::sync::Mutex<HashMap<String, i64>>> = Arc::default();
    let retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut senders = Vec::new();
    for s in 0..4 {
        let (base, acked, client, token, retries) = (
            base.clone(),
            acked.clone(),
            client.clone(),
            token.clone(),
            retries.clone(),
        );
        senders.push(tokio::spawn(async move {
            for i in 0..120 {
                let client_id = format!("s{s}-{i}");
                // retry the same clientId until it is acknowledged
                loop {
                    assert!(Instant::now() < deadline, "sender {s} stuck on {client_id}");
                    let url = format!("{}/chat/{chat}/messages", base.read().unwrap());
                    let body =
                        json!({"messageType": "TEXT", "content": client_id, "clientId": client_id});
                    match post(&client, url, Some(&token), body).await {
                        Ok((201 | 200, m)) => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            acked
                                .lock()
                                .unwrap()
                                .insert(client_id.clone(), m["id"].as_i64().unwrap());
                            break;
                        }
                        Ok((status, m)) => panic!("{status} {m}"),
                        Err(_) => {
                            retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(30)).await;
                        }
                    }
                }
            }
        }));
    }
    // three crashes while they send
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        kill9(&mut server);
        server = start(dir.path());
        *base.write().unwrap() = server.base.clone();
    }
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 480);
    let retries = retries.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        retries >= 3,
        "the crashes hit sends in flight ({retries} retries)"
    );

    // the history holds every acknowledged message exactly once
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    let mut after = 0;
    loop {
        let page: Value = client
            .get(format!(
                "{}/chat/{chat}/messages?after={after}&limit=200",
                server.base
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for m in page["items"].as_array().unwrap() {
            seen.entry(m["clientId"].as_str().unwrap().to_string())
                .or_default()
                .push(m["id"].as_i64().unwrap());
            after = m["id"].as_i64().unwrap();
        }
        if page["hasMore"] == false {
            break;
        }
    }
    for (client_id, id) in &acked {
        assert_eq!(
            seen.get(client_id),
            Some(&vec![*id]),
            "{client_id} stored exactly once with its acked id"
        );
    }
    assert_eq!(
        seen.len(),
        acked.len(),
        "nothing unacknowledged appeared twice or stray"
    );
    kill9(&mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    let (_, a) = post(
        &client,
        format!("{}/auth/register", server.base),
        None,
        json!({"email": "t@term.io", "password": "password1", "name": "T"}),
    )
    .await
    .unwrap();
    let url = format!(
        "{}/ws?token={}",
        server.base.replace("http://", "ws://"),
        a["token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _ready = ws.next().await;
    let started = Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let mut code = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if let WsMessage::Close(frame) = msg {
            code = frame.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(code, Some(1001), "going-away close frame");
    let status = exit_within_10s(&mut server, started).await;
    assert!(status.success(), "exit status {status:?}");
    // the WAL was checkpointed into the main file
    if !crate::helpers::is_postgres() {
        let wal = dir.path().join("natter.db-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_passwords_tokens_or_content() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let data = dir.path().join("data");
    let db = crate::helpers::database_for(&data);
    let database: Vec<&str> = db
        .as_ref()
        .map(|db| vec!["--database", db.url.as_str()])
        .unwrap_or_default();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["serve", "--port", "0", "--log-level", "debug", "--data-dir"])
        .arg(&data)
        .args(&database)
        // no NO_COLOR: a log file gets plain text all the same
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut base = String::new();
    for _ in 0..200 {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(at) = text.find("http://127.0.0.1:") {
            base = text[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!base.is_empty(), "server started");
    let client = reqwest::Client::new();
    let password = "Sup3r-Secret-Passw0rd";
    let content = "the launch code is 0000-LEAK-CANARY";
    let (_, a) = post(
        &client,
        format!("{base}/auth/register"),
        None,
        json!({"email": "log@x.io", "password": password, "name": "L"}),
    )
    .await
    .unwrap();
    let (_, b) = post(
        &client,
        format!("{base}/auth/register"),
        None,
        json!({"email": "log2@x.io", "password": password, "name": "M"}),
    )
    .await
    .unwrap();
    let token = a["token"].as_str().unwrap().to_string();
    post(
        &client,
        format!("{base}/auth/login"),
        None,
        json!({"email": "log@x.io", "password": password}),
    )
    .await
    .unwrap();
    post(
        &client,
        format!("{base}/auth/login"),
        None,
        json!({"email": "log@x.io", "password": "wrong-Passw0rd-xyz"}),
    )
    .await
    .unwrap();
    let (_, chat) = post(
        &client,
        format!("{base}/chat"),
        Some(&token),
        json!({"participantIds": [b["user"]["id"]], "isGroup": false}),
    )
    .await
    .unwrap();
    let chat = chat["id"].as_i64().unwrap();
    post(
        &client,
        format!("{base}/chat/{chat}/messages"),
        Some(&token),
        json!({"messageType": "TEXT", "content": content}),
    )
    .await
    .unwrap();
    let url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _ = ws.next().await;
    use futures_util::SinkExt;
    ws.send(WsMessage::Text(json!({"event": "message:send", "data": {"chatId": chat, "messageType": "TEXT", "content": content}, "ack": 1}).to_string().into())).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.next()).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.lines().count() > 10,
        "debug logging produced lines:\n{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no terminal colour codes in a log file"
    );
    for secret in [
        password,
        "wrong-Passw0rd-xyz",
        token.as_str(),
        &token[token.len() - 20..],
        "LEAK-CANARY",
    ] {
        assert!(!text.contains(secret), "the log contains {secret:?}");
    }
}

/// SIGTERM the moment the server says it is listening (what a service
/// manager or a benchmark does right after a health check) must still be a
/// graceful stop with exit 0, never the default "killed by signal".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_start_is_graceful() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let mut server = start(dir.path());
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(server.child.id() as i32, libc::SIGTERM);
        }
        let status = exit_within_10s(&mut server, Instant::now()).await;
        assert!(status.success(), "exit status {status:?}");
    }
}
