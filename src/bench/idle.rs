//! `bench idle`: `--connections` WebSockets held open (users share them, as
//! with several devices per user), measuring the time to connect them all and
//! the server's RSS per connection. Check: one message to a group of all the
//! users reaches every connection of every other member exactly once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::load::read_loop;
use super::server::{connect, raise_fd_limit, Api, Target};
use super::sio::Transport;
use super::{micros_since, BenchArgs, Progress, Report};

/// Runs the scenario into `report`.
pub async fn run(
    args: &BenchArgs,
    progress: &Arc<Progress>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let c = args.connections.max(1);
    let u = args.users.unwrap_or(100).clamp(2, 1000).min(c.max(2));
    let limit = raise_fd_limit();
    anyhow::ensure!(
        (c as u64) + 256 < limit,
        "{c} connections need more open files than the limit {limit} (ulimit -Hn)"
    );
    let mut target = Target::open(args.url.as_deref(), args.durability)?;
    let api = Api::new(&target.base)?;

    progress.set_stage("registering");
    // Few sign-ups at a time: each argon2 hash takes 19 MiB in the server,
    // which would otherwise inflate the baseline RSS.
    let users = api.register_many("idle", u, 2).await?;
    let others: Vec<i64> = users[1..].iter().map(|x| x.id).collect();
    let chat = api.create_chat(&users[0], &others, true).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = target.rss();

    progress.set_stage("connecting");
    let base = Instant::now();
    let finish = CancellationToken::new();
    let mut readers = Vec::with_capacity(c);
    let mut sinks = Vec::with_capacity(c);
    let mut owners = Vec::with_capacity(c);
    let mut stream = futures_util::stream::iter(0..c)
        .map(|i| {
            let user = &users[i % u];
            let base = &api.base;
            async move { connect(base, &user.token).await.map(|ws| (i, ws)) }
        })
        .buffer_unordered(64);
    while let Some(r) = stream.next().await {
        let (i, (ws, _)) = r?;
        let user = &users[i % u];
        let (sink, rx) = ws.split();
        readers.push(tokio::spawn(read_loop(
            rx,
            user.id,
            base,
            None,
            progress.clone(),
            finish.clone(),
            (Transport::Ws, None),
        )));
        sinks.push(sink);
        owners.push(user.id);
        progress.sent.store(readers.len() as u64, Ordering::Relaxed);
    }
    drop(stream);
    let connect_time = base.elapsed();
    progress.set_stage("holding");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss1 = target.rss();

    // One message to everyone: every other member's connections get it once.
    progress.sent.store(0, Ordering::Relaxed);
    let expected = owners.iter().filter(|&&o| o != users[0].id).count() as u64;
    let sent_at = Instant::now();
    let msg = api
        .post(
            &format!("/chat/{chat}/messages"),
            Some(&users[0].token),
            json!({"messageType": "TEXT", "content": micros_since(base).to_string(), "clientId": "idle-1"}),
        )
        .await?;
    let id = msg["id"].as_i64().context("send: no id")?;
    progress.sent.store(1, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    while progress.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fanout_time = sent_at.elapsed();
    let hold = Duration::from_secs(args.seconds).saturating_sub(base.elapsed());
    tokio::time::sleep(hold.max(Duration::from_millis(200))).await;
    let rss2 = target.rss();
    finish.cancel();

    let mut latencies = Vec::with_capacity(c);
    for (r, owner) in readers.into_iter().zip(&owners) {
        let inbox = r.await.context("reader panicked")?;
        report.errors.extend(inbox.errors.iter().take(1).cloned());
        let mut counts: HashMap<i64, u64> = HashMap::new();
        for &(got, _, lat) in &inbox.news {
            *counts.entry(got).or_default() += 1;
            latencies.push(lat);
        }
        report.delivered += inbox.news.len() as u64;
        if *owner != users[0].id {
            let n = counts.remove(&id).unwrap_or(0);
            report.lost += u64::from(n == 0);
            report.duplicates += n.saturating_sub(1);
        }
        if !counts.is_empty() {
            report.errors.push(format!(
                "a connection of user {owner} got unexpected messages"
            ));
        }
    }
    drop(sinks);
    let stored = api.all_message_ids(&users[0], chat, 10).await?;
    if stored != vec![id] {
        report
            .errors
            .push(format!("the group stores {stored:?}, expected [{id}]"));
    }
    report.errors.truncate(20);

    report.sent = 1;
    report.connections = Some(c as u64);
    report.rss_bytes = rss1;
    report.deliveries_per_sec = report.delivered as f64 / fanout_time.as_secs_f64();
    report.latencies(&mut latencies);
    report.put("users", u as u64);
    report.put("connectSeconds", connect_time.as_secs_f64());
    report.put("connectsPerSec", c as f64 / connect_time.as_secs_f64());
    if let (Some(a), Some(b)) = (rss0, rss1) {
        report.put("rssBeforeBytes", a);
        report.put("rssPerConnBytes", b.saturating_sub(a) / c as u64);
    }
    if let Some(r) = rss2 {
        report.put("rssAfterFanoutBytes", r);
    }
    report.put("fanoutMs", fanout_time.as_secs_f64() * 1000.0);
    target.stop()?;
    Ok(())
}
