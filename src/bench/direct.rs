//! `bench direct`: N users in N/2 one-to-one chats, every user sending to its
//! partner (closed loop with `--window` unacknowledged sends, or `--rate` in
//! total). Latency is send → `message:new` at the partner. Checks: every
//! acknowledged message reached the partner exactly once and is in the
//! chat's history, and nothing else arrived.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::load::{collect, connect_all_with, connect_with, drain, read_loop, send_loop, Pace};
use super::server::{Api, Target};
use super::sio::Transport;
use super::{BenchArgs, Progress, Report};

/// Runs the scenario into `report`.
pub async fn run(
    args: &BenchArgs,
    progress: &Arc<Progress>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = (args.users.unwrap_or(100).max(2) / 2) * 2;
    let mut target = Target::open(args.url.as_deref(), args.durability)?;
    let api = Api::new(&target.base)?;

    progress.set_stage("registering");
    let users = api.register_many("direct", n, 8).await?;
    progress.set_stage("creating chats");
    let chats: Vec<i64> = futures_util::stream::iter(users.chunks(2))
        .map(|p| {
            let api = api.clone();
            async move { api.create_chat(&p[0], &[p[1].id], false).await }
        })
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    // --nodes: more nodes on the same database and bus; the two users of a
    // pair connect to different nodes, so every delivery crosses the bus.
    let mut peers = Vec::new();
    for _ in 1..args.nodes.max(1) {
        peers.push(Target::open(None, args.durability)?);
    }
    let bases: Vec<String> = std::iter::once(target.base.clone())
        .chain(peers.iter().map(|p| p.base.clone()))
        .collect();
    progress.set_stage("connecting");
    let sockets = if bases.len() == 1 {
        connect_all_with(args.transport, &api.base, &users, 32).await?
    } else {
        let nodes = bases.len();
        futures_util::stream::iter(users.iter().enumerate())
            .map(|(i, u)| {
                let base = bases[(i / 2 + i % 2) % nodes].clone();
                async move { connect_with(args.transport, &base, &u.token).await }
            })
            .buffered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?
    };

    progress.set_stage("sending");
    let base = Instant::now();
    let stop = CancellationToken::new();
    let finish = CancellationToken::new();
    let budget = Arc::new(AtomicI64::new(
        args.messages
            .map_or(i64::MAX, |m| m.min(i64::MAX as u64) as i64),
    ));
    let every = args
        .rate
        .map(|r| Duration::from_secs_f64(n as f64 / r.max(0.001)));
    let cpu0 = target.cpu();
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for (i, ((ws, _), user)) in sockets.into_iter().zip(&users).enumerate() {
        let (sink, stream) = ws.split();
        let (pace, window) = match every {
            Some(e) => (Pace::Every(e, e.mul_f64(i as f64 / n as f64)), None),
            None => {
                let w = Arc::new(Semaphore::new(args.window.max(1)));
                (Pace::Window(w.clone()), Some(w))
            }
        };
        let (pong_tx, pong_rx) = match args.transport {
            Transport::Ws => (None, None),
            Transport::Socketio => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
        };
        readers.push(tokio::spawn(read_loop(
            stream,
            user.id,
            base,
            window,
            progress.clone(),
            finish.clone(),
            (args.transport, pong_tx),
        )));
        senders.push(tokio::spawn(send_loop(
            sink,
            chats[i / 2],
            base,
            pace,
            budget.clone(),
            progress.clone(),
            stop.clone(),
            (args.transport, pong_rx),
        )));
    }
    let all = futures_util::future::join_all(senders);
    tokio::pin!(all);
    let finished = tokio::select! {
        r = &mut all => Some(r),
        _ = tokio::time::sleep(Duration::from_secs(args.seconds)) => None,
    };
    stop.cancel();
    let sent_results = match finished {
        Some(r) => r,
        None => all.await,
    };
    let send_phase = base.elapsed();
    progress.set_stage("draining");
    // In a pair, each acknowledged message has exactly one recipient.
    let drained = drain(progress, |acked| acked, Duration::from_secs(15)).await;
    let elapsed = base.elapsed();
    let cpu1 = target.cpu();
    finish.cancel();
    let (inboxes, sent) = collect(readers, sent_results, &mut report.errors).await?;
    if !drained {
        report
            .errors
            .push("deliveries still missing 15 s after the last send".into());
    }

    progress.set_stage("checking");
    let acked: u64 = inboxes.iter().map(|i| i.acks.len() as u64).sum();
    if acked != sent {
        report
            .errors
            .push(format!("{sent} sent but {acked} acknowledged"));
    }
    let mut latencies = Vec::with_capacity(acked as usize);
    for (i, inbox) in inboxes.iter().enumerate() {
        report.errors.extend(inbox.errors.iter().take(3).cloned());
        let partner = &users[i ^ 1];
        let expected: HashSet<i64> = inboxes[i ^ 1].acks.iter().copied().collect();
        let mut seen: HashMap<i64, u32> = HashMap::with_capacity(expected.len());
        for &(id, sender, lat) in &inbox.news {
            if sender != partner.id || !expected.contains(&id) {
                report
                    .errors
                    .push(format!("user {} got unexpected message {id}", users[i].id));
                continue;
            }
            *seen.entry(id).or_default() += 1;
            latencies.push(lat);
        }
        report.delivered += inbox.news.len() as u64;
        report.duplicates += seen.values().map(|c| u64::from(c - 1)).sum::<u64>();
        report.lost += expected.iter().filter(|id| !seen.contains_key(id)).count() as u64;
    }
    // Stored: each chat's history holds exactly the pair's acknowledged sends.
    let pages = (acked as usize / 200) + 10;
    let stored: Vec<anyhow::Result<Vec<i64>>> = futures_util::stream::iter(0..chats.len())
        .map(|c| api.all_message_ids(&users[2 * c], chats[c], pages))
        .buffered(8)
        .collect()
        .await;
    let mut stored_total = 0u64;
    for (c, ids) in stored.into_iter().enumerate() {
        let ids = ids?;
        stored_total += ids.len() as u64;
        let mut expected: Vec<i64> = inboxes[2 * c].acks.clone();
        expected.extend_from_slice(&inboxes[2 * c + 1].acks);
        expected.sort_unstable();
        if ids != expected {
            report.errors.push(format!(
                "chat {} stores {} messages, {} were acknowledged",
                chats[c],
                ids.len(),
                expected.len()
            ));
        }
    }

    report.sent = acked;
    report.msgs_per_sec = acked as f64 / elapsed.as_secs_f64();
    report.deliveries_per_sec = report.delivered as f64 / elapsed.as_secs_f64();
    report.latencies(&mut latencies);
    report.put("users", n as u64);
    report.put(
        "mode",
        match args.rate {
            Some(r) => format!("rate {r}/s"),
            None => format!("closed loop, window {}", args.window),
        },
    );
    report.put("sendSeconds", send_phase.as_secs_f64());
    report.put("seconds", elapsed.as_secs_f64());
    report.put("stored", stored_total);
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        report.put(
            "serverCpuPct",
            100.0 * (b - a).as_secs_f64() / elapsed.as_secs_f64(),
        );
        if acked > 0 {
            report.put(
                "serverCpuMsPerMsg",
                (b - a).as_secs_f64() * 1000.0 / acked as f64,
            );
        }
    }
    report.put(
        "transport",
        match args.transport {
            Transport::Ws => "ws",
            Transport::Socketio => "socketio",
        },
    );
    report.rss_bytes = target.rss();
    report.connections = Some(n as u64);
    if !peers.is_empty() {
        report.put("nodes", bases.len() as u64);
    }
    for mut p in peers {
        p.stop()?;
    }
    target.stop()?;
    Ok(())
}
