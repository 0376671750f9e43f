//! `bench history`: a data dir with `--messages` stored messages (default
//! 1,000,000) over `--chats` groups of two users, then the latency of reads
//! through the real HTTP API: the newest 50-message page, a page `before=` a
//! random id, the chat list and a `/sync?after=` catch-up page.
//!
//! Seeding: natter creates the users, chats and a first message through the
//! API, is stopped, and the bulk rows are written with direct SQL following
//! `schema.sql` the way the writer does (a `messages` row, its `events` row,
//! the chat's `last_message_id`/`last_activity`, members' receipt positions);
//! then natter is started again on the same data dir.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use rand::Rng;
use rusqlite::params;
use serde_json::json;

use super::load::roundtrip;
use super::server::{Api, Target, User};
use super::{BenchArgs, Percentiles, Progress, Report};

/// Runs the scenario into `report`.
pub async fn run(
    args: &BenchArgs,
    progress: &Arc<Progress>,
    report: &mut Report,
) -> anyhow::Result<()> {
    run_phases(args, progress, report, false).await
}

/// `bench search`: the same seeded data dir, then only search timed: a
/// common word, two words, a rare word's prefix, and the index's size.
pub async fn run_search(
    args: &BenchArgs,
    progress: &Arc<Progress>,
    report: &mut Report,
) -> anyhow::Result<()> {
    run_phases(args, progress, report, true).await
}

async fn run_phases(
    args: &BenchArgs,
    progress: &Arc<Progress>,
    report: &mut Report,
    search_only: bool,
) -> anyhow::Result<()> {
    if args.url.is_some() {
        bail!("history seeds its own data dir; it takes no --url");
    }
    let m = args.messages.unwrap_or(1_000_000).max(1);
    let n_chats = args.chats.clamp(1, 1000);
    let dir = tempfile::Builder::new().prefix("natter-bench").tempdir()?;
    let mut target = Target::spawn(dir.path(), args.durability)?;
    let api = Api::new(&target.base)?;

    progress.set_stage("creating users and chats");
    let a = api.register("hist").await?;
    let b = api.register("hist").await?;
    let mut chats = Vec::with_capacity(n_chats);
    for _ in 0..n_chats {
        let chat = api.create_chat(&a, &[b.id], true).await?;
        api.post(
            &format!("/chat/{chat}/messages"),
            Some(&a.token),
            json!({"messageType": "TEXT", "content": "first"}),
        )
        .await?;
        chats.push(chat);
    }
    target.stop()?;

    progress.set_stage("seeding");
    let db_path = dir.path().join("natter.db");
    let t = Instant::now();
    let (users, chat_ids) = ((a.id, b.id), chats.clone());
    let progress_seed = progress.clone();
    let count = m.saturating_sub(n_chats as u64);
    let seeded = match super::server::database() {
        Some(url) => {
            let url = url.to_string();
            let rt = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                crate::db::seed::seed_postgres(&url, &rt, users, &chat_ids, count)
            })
            .await??
        }
        None => {
            tokio::task::spawn_blocking(move || {
                seed(&db_path, users, &chat_ids, count, &progress_seed)
            })
            .await??
        }
    };
    report.put("seedSeconds", t.elapsed().as_secs_f64());

    progress.set_stage("measuring");
    let mut target = Target::spawn(dir.path(), args.durability)?;
    let api = Api::new(&target.base)?;
    let budget = Duration::from_secs(args.seconds.max(1)).div_f64(4.0);
    let n = args.requests.max(1);
    let mut rng = rand::rng();
    let (max_event, max_id) = seeded;

    if search_only {
        let budget = Duration::from_secs(args.seconds.max(1)).div_f64(3.0);
        // "meeting" is in about one message in 60, "release date" both
        // words in about one in 4,000, "kumq" one rare word's prefix.
        let mut all = Vec::new();
        for (name, q) in [
            ("searchOneWord", "meeting "),
            ("searchTwoWords", "release date "),
            ("searchRarePrefix", "kumq"),
        ] {
            let (mut lat, _) = time_requests(&api, &b, n, budget, |_| {
                format!("/search?q={}", q.replace(' ', "%20"))
            })
            .await?;
            let p = Percentiles::of(&mut lat);
            report.put(&format!("{name}P50Ms"), p.p50);
            report.put(&format!("{name}P99Ms"), p.p99);
            report.put(&format!("{name}MaxMs"), p.max);
            all.extend(lat);
        }
        let hits = api.get("/search?q=kumquat&limit=200", &b.token).await?;
        report.put(
            "rareWordHitsFirstPage",
            hits["items"].as_array().map_or(0, Vec::len) as u64,
        );
        if super::server::database().is_none() {
            let db = dir.path().join("natter.db");
            let (index, file) =
                tokio::task::spawn_blocking(move || -> anyhow::Result<(i64, u64)> {
                    let c = rusqlite::Connection::open_with_flags(
                        &db,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                    )?;
                    let index: i64 = c.query_row(
                        "SELECT (SELECT coalesce(sum(length(block)), 0) FROM message_search_data)
                          + (SELECT count(*) * 16 FROM message_search_idx)",
                        [],
                        |r| r.get(0),
                    )?;
                    Ok((index, std::fs::metadata(&db)?.len()))
                })
                .await??;
            report.put("searchIndexBytes", index);
            report.put("databaseBytes", file);
        }
        report.latencies(&mut all);
        report.sent = m;
        report.delivered = m;
        report.rss_bytes = target.rss();
        target.stop()?;
        return Ok(());
    }

    let newest = time_requests(&api, &b, n, budget, |_| {
        format!(
            "/chat/{}/messages?limit=50",
            chats[rand::rng().random_range(0..chats.len())]
        )
    })
    .await?;
    let before = time_requests(&api, &b, n, budget, |_| {
        let before = rand::rng().random_range(1..=max_id);
        format!(
            "/chat/{}/messages?limit=50&before={before}",
            chats[rand::rng().random_range(0..chats.len())]
        )
    })
    .await?;
    let list = time_requests(&api, &b, n, budget, |_| "/chat".to_string()).await?;
    let back = rng.random_range(100..=10_000.min(max_event.max(101)));
    let sync = time_requests(&api, &b, n, budget, |_| {
        let after = (max_event - rand::rng().random_range(100..=back.max(100))).max(0);
        format!("/sync?after={after}&limit=100")
    })
    .await?;
    // A device that was away for half the history: the first catch-up page
    // from a cursor far back (must not cost in proportion to the gap).
    let sync_far = time_requests(&api, &b, n.min(200), budget, |_| {
        let after = rand::rng().random_range(0..=(max_event / 2).max(1));
        format!("/sync?after={after}&limit=100")
    })
    .await?;

    progress.set_stage("checking");
    let rt = roundtrip(&api).await?;
    let db = dir.path().join("natter.db");
    let stored: i64 = match super::server::database() {
        Some(url) => {
            let url = url.to_string();
            let rt = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || crate::db::seed::count_postgres(&url, &rt))
                .await??
        }
        None => {
            tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
                let c = rusqlite::Connection::open_with_flags(
                    &db,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                Ok(c.query_row(
                    "SELECT count(*) FROM messages WHERE message_type != 'SYSTEM'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await??
        }
    };
    let expected = m.max(n_chats as u64) + 1;
    report.sent = expected;
    report.delivered = stored as u64;
    report.lost = expected.saturating_sub(stored as u64) + u64::from(rt.delivered == 0);
    report.duplicates = rt.delivered.saturating_sub(1);
    if stored as u64 != expected {
        report
            .errors
            .push(format!("{stored} messages stored, {expected} expected"));
    }
    let total_requests = newest.0.len() + before.0.len() + list.0.len() + sync.0.len();
    let total_time = newest.1 + before.1 + list.1 + sync.1;
    report.msgs_per_sec = total_requests as f64 / total_time.as_secs_f64();
    let mut page = newest.0;
    report.latencies(&mut page);
    for (name, (mut lat, _)) in [
        ("before", before),
        ("chatList", list),
        ("sync", sync),
        ("syncFar", sync_far),
    ] {
        let p = Percentiles::of(&mut lat);
        report.put(&format!("{name}P50Ms"), p.p50);
        report.put(&format!("{name}P99Ms"), p.p99);
        report.put(&format!("{name}MaxMs"), p.max);
    }
    report.put("storedMessages", stored);
    report.put("chats", n_chats as u64);
    report.put("requestsPerEndpoint", page.len() as u64);
    report.rss_bytes = target.rss();
    progress.delivered.store(stored as u64, Ordering::Relaxed);
    target.stop()?;
    Ok(())
}

/// Sequential GETs (one at a time: latency, not throughput), `n` or until
/// `budget`; latencies in µs and the time taken. Every answer must be 200.
async fn time_requests(
    api: &Api,
    user: &User,
    n: usize,
    budget: Duration,
    mut path: impl FnMut(usize) -> String,
) -> anyhow::Result<(Vec<u64>, Duration)> {
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n);
    // A few warm-up requests open the connection and the read pool.
    for i in 0..5 {
        api.get(&path(i), &user.token).await?;
    }
    for i in 0..n {
        if start.elapsed() > budget && lat.len() >= 10 {
            break;
        }
        let p = path(i);
        let t = Instant::now();
        let r = api
            .http
            .get(format!("{}{p}", api.base))
            .bearer_auth(&user.token)
            .send()
            .await?;
        let status = r.status();
        let body = r.bytes().await?;
        lat.push(t.elapsed().as_micros() as u64);
        ensure!(status.is_success(), "GET {p}: {status}");
        ensure!(body.len() > 2, "GET {p}: empty body");
    }
    Ok((lat, start.elapsed()))
}

/// Writes `count` messages spread over `chats` in one transaction, with the
/// rows natter's writer would write; returns (newest event id, newest message id).
fn seed(
    path: &std::path::Path,
    users: (i64, i64),
    chats: &[i64],
    count: u64,
    progress: &Progress,
) -> anyhow::Result<(i64, i64)> {
    let mut conn = rusqlite::Connection::open(path).context("open the database to seed")?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -200000;",
    )?;
    let tx = conn.transaction()?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(19);
    {
        let mut msg = tx.prepare(
            "INSERT INTO messages (chat_id, sender_id, message_type, content, created_at, updated_at)
             VALUES (?1, ?2, 'TEXT', ?3, ?4, ?4)",
        )?;
        let mut ev = tx.prepare(
            "INSERT INTO events (chat_id, kind, message_id, user_id, created_at)
             VALUES (?1, 'message:new', ?2, NULL, ?3)",
        )?;
        for i in 0..count {
            let chat = chats[(i % chats.len() as u64) as usize];
            let sender = if i % 2 == 0 { users.0 } else { users.1 };
            // Oldest first, one second apart, ending now.
            let at = now - (count - i) as i64 * 1000;
            let content = super::words::message(&mut rng);
            msg.execute(params![chat, sender, content, at])?;
            let id = tx.last_insert_rowid();
            ev.execute(params![chat, id, at])?;
            if i % 50_000 == 0 {
                progress.sent.store(i, Ordering::Relaxed);
            }
        }
    }
    for &chat in chats {
        let (last_id, last_event): (i64, i64) = tx.query_row(
            "SELECT (SELECT max(id) FROM messages WHERE chat_id = ?1),
                    (SELECT max(id) FROM events WHERE chat_id = ?1)",
            [chat],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "UPDATE chats SET last_message_id = ?2, last_activity = ?3, updated_at = ?4 WHERE id = ?1",
            params![chat, last_id, last_event, now],
        )?;
        // Both members have read all but the last few: a realistic unread count.
        // Members since before the first seeded message (search shows only
        // messages sent since the caller joined).
        tx.execute(
            "UPDATE chat_participants SET delivered_up_to = ?2, read_up_to = ?3,
                 joined_at = min(joined_at, ?4) WHERE chat_id = ?1",
            params![
                chat,
                last_id,
                (last_id - 40).max(0),
                now - (count as i64 + 1) * 1000
            ],
        )?;
    }
    tx.commit()?;
    progress.sent.store(count, Ordering::Relaxed);
    let max_event: i64 = conn.query_row("SELECT max(id) FROM events", [], |r| r.get(0))?;
    let max_id: i64 = conn.query_row("SELECT max(id) FROM messages", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok((max_event, max_id))
}
