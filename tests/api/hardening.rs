//! Hardening round 2 (issue 14): connection floods, the typing-room race,
//! Origin checks on every Engine.IO request, unauthenticated Engine.IO
//! sessions, and sockets per user.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::crash::{kill9, start_with};

/// Open file descriptors of a process (Linux).
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `/health` answers 200 over a new connection within a few seconds.
async fn assert_healthy(base: &str) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let resp = client.get(format!("{base}/health")).send().await;
    let status = resp.map(|r| r.status().as_u16());
    assert!(
        matches!(status, Ok(200)),
        "/health during the flood: {status:?}"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_flood_is_shed_and_health_keeps_answering() {
    const CAP: usize = 200;
    const FLOOD: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_with(
        dir.path(),
        &["--max-connections", "200", "--idle-connection-timeout", "2"],
    );
    let pid = server.child.id();
    let addr = server.base.trim_start_matches("http://").to_string();
    assert_healthy(&server.base).await;
    let baseline = open_fds(pid);

    // Connections that never send a byte, from one client.
    let mut idle = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
        if i % 100 == 99 {
            assert_healthy(&server.base).await;
        }
    }
    // Once the server has accepted them all (the connections are in its
    // backlog until then), its descriptors stay under the cap.
    let mut peak = 0;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(800) {
        peak = peak.max(open_fds(pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        peak <= baseline + CAP + 16,
        "{peak} open fds with a cap of {CAP} connections (baseline {baseline})"
    );
    assert_healthy(&server.base).await;

    // Every idle connection is closed by the deadline (or was evicted).
    let mut buf = [0u8; 16];
    for (i, stream) in idle.iter_mut().enumerate() {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "idle connection {i} still open: {read:?}"
        );
    }
    assert_healthy(&server.base).await;
    assert!(
        open_fds(pid) <= baseline + 16,
        "{} fds after the flood",
        open_fds(pid)
    );
    kill9(&mut server);
}
