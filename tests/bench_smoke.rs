//! Smoke run of every `natter bench` scenario at tiny sizes: each must exit 0
//! and print a JSON report on its last line with no lost or duplicated
//! deliveries. Runs the real binary (which starts its own natter child).

use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

/// One scenario at a time: each starts a server and load on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn bench(args: &[&str]) -> Value {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run natter bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "natter bench {args:?} failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().expect("output");
    let report: Value = serde_json::from_str(last).expect("JSON on the last line");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    for key in [
        "scenario",
        "sent",
        "delivered",
        "msgsPerSec",
        "deliveriesPerSec",
        "p50Ms",
        "p99Ms",
        "maxMs",
    ] {
        assert!(report.get(key).is_some(), "{key} missing: {report}");
    }
    report
}

#[test]
fn direct_smoke() {
    let r = bench(&["direct", "--users", "4", "--window", "4", "--seconds", "2"]);
    assert!(r["sent"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["delivered"], r["sent"], "{r}");
}

#[test]
fn direct_over_socketio_smoke() {
    let r = bench(&[
        "direct",
        "--users",
        "4",
        "--window",
        "8",
        "--seconds",
        "2",
        "--transport",
        "socketio",
    ]);
    assert!(r["sent"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["delivered"], r["sent"], "{r}");
    assert_eq!(r["extra"]["transport"], "socketio", "{r}");
    assert!(r["extra"]["serverCpuMsPerMsg"].as_f64().is_some(), "{r}");
}

#[test]
fn direct_at_a_rate_smoke() {
    let r = bench(&[
        "direct",
        "--users",
        "2",
        "--rate",
        "50",
        "--messages",
        "20",
        "--seconds",
        "2",
    ]);
    assert_eq!(r["sent"], 20, "{r}");
    assert_eq!(r["delivered"], 20, "{r}");
}

#[test]
fn group_smoke() {
    let r = bench(&[
        "group",
        "--members",
        "6",
        "--senders",
        "2",
        "--rate",
        "40",
        "--seconds",
        "2",
    ]);
    let sent = r["sent"].as_u64().unwrap();
    assert!(sent > 0, "{r}");
    assert_eq!(r["delivered"].as_u64().unwrap(), sent * 5, "{r}");
}

#[test]
fn idle_smoke() {
    let r = bench(&[
        "idle",
        "--connections",
        "40",
        "--users",
        "4",
        "--seconds",
        "2",
    ]);
    assert_eq!(r["connections"], 40, "{r}");
    assert_eq!(r["delivered"], 30, "{r}");
    assert!(r["rssBytes"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn history_smoke() {
    let r = bench(&[
        "history",
        "--messages",
        "3000",
        "--chats",
        "3",
        "--requests",
        "20",
        "--seconds",
        "2",
    ]);
    assert_eq!(r["extra"]["storedMessages"], 3001, "{r}");
}

#[test]
fn startup_smoke() {
    let r = bench(&["startup"]);
    assert!(r["startupMs"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["extra"]["binaryBytes"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn other_hosts_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["bench", "direct", "--url", "http://example.com:4000"])
        .output()
        .expect("run natter bench");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("this machine"));
}
