//! `bench group`: one group of `--members`, `--senders` of them sending at
//! `--rate` messages/s in total. Fan-out latency is send → the last member's
//! `message:new`. Checks: every acknowledged message reached every other
//! member exactly once and is in the group's history.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::load::{collect, connect_all, drain, read_loop, send_loop, Pace};
use super::server::{Api, Target};
use super::sio::Transport;
use super::{BenchArgs, Percentiles, Progress, Report};

/// Runs the scenario into `report`.
pub async fn run(
    args: &BenchArgs,
    progress: &Arc<Progress>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let k = args.members.clamp(2, 1024);
    let senders = args.senders.clamp(1, k);
    let rate = args.rate.unwrap_or(200.0).max(0.001);
    let mut target = Target::open(args.url.as_deref(), args.durability)?;
    let api = Api::new(&target.base)?;

    progress.set_stage("registering");
    let t = Instant::now();
    let users = api.register_many("group", k, 8).await?;
    report.put("registerSeconds", t.elapsed().as_secs_f64());
    progress.set_stage("creating the group");
    let others: Vec<i64> = users[1..].iter().map(|u| u.id).collect();
    let chat = api.create_chat(&users[0], &others, true).await?;
    progress.set_stage("connecting");
    let sockets = connect_all(&api.base, &users, 64).await?;

    progress.set_stage("sending");
    let base = Instant::now();
    let stop = CancellationToken::new();
    let finish = CancellationToken::new();
    let budget = Arc::new(AtomicI64::new(
        args.messages
            .map_or(i64::MAX, |m| m.min(i64::MAX as u64) as i64),
    ));
    let every = Duration::from_secs_f64(senders as f64 / rate);
    let cpu0 = target.cpu();
    let mut readers = Vec::new();
    let mut send_tasks = Vec::new();
    let mut idle_sinks = Vec::new();
    for (i, ((ws, _), user)) in sockets.into_iter().zip(&users).enumerate() {
        let (sink, stream) = ws.split();
        readers.push(tokio::spawn(read_loop(
            stream,
            user.id,
            base,
            None,
            progress.clone(),
            finish.clone(),
            (Transport::Ws, None),
        )));
        if i < senders {
            let offset = every.mul_f64(i as f64 / senders as f64);
            send_tasks.push(tokio::spawn(send_loop(
                sink,
                chat,
                base,
                Pace::Every(every, offset),
                budget.clone(),
                progress.clone(),
                stop.clone(),
                (Transport::Ws, None),
            )));
        } else {
            idle_sinks.push(sink);
        }
    }
    let all = futures_util::future::join_all(send_tasks);
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
    let others_n = (k - 1) as u64;
    let drained = drain(progress, |acked| acked * others_n, Duration::from_secs(20)).await;
    let elapsed = base.elapsed();
    let cpu1 = target.cpu();
    finish.cancel();
    let (inboxes, sent) = collect(readers, sent_results, &mut report.errors).await?;
    drop(idle_sinks);
    if !drained {
        report
            .errors
            .push("deliveries still missing 20 s after the last send".into());
    }

    progress.set_stage("checking");
    // message id → its sender's user id, from the acks.
    let mut sender_of: HashMap<i64, i64> = HashMap::new();
    for (i, inbox) in inboxes.iter().enumerate() {
        for &id in &inbox.acks {
            sender_of.insert(id, users[i].id);
        }
    }
    let acked = sender_of.len() as u64;
    if acked != sent {
        report
            .errors
            .push(format!("{sent} sent but {acked} acknowledged"));
    }
    let mut fanout: HashMap<i64, (u64, u64)> = HashMap::with_capacity(sender_of.len());
    let mut per_delivery = Vec::new();
    for (i, inbox) in inboxes.iter().enumerate() {
        report.errors.extend(inbox.errors.iter().take(3).cloned());
        let mut seen: HashSet<i64> = HashSet::with_capacity(inbox.news.len());
        for &(id, sender, lat) in &inbox.news {
            if sender_of.get(&id) != Some(&sender) {
                report.errors.push(format!(
                    "member {} got unexpected message {id}",
                    users[i].id
                ));
                continue;
            }
            if !seen.insert(id) {
                report.duplicates += 1;
                continue;
            }
            let e = fanout.entry(id).or_default();
            e.0 += 1;
            e.1 = e.1.max(lat);
            per_delivery.push(lat);
        }
        report.delivered += inbox.news.len() as u64;
    }
    for id in sender_of.keys() {
        let got = fanout.get(id).map_or(0, |e| e.0);
        report.lost += others_n.saturating_sub(got);
    }
    let mut stored = api
        .all_message_ids(&users[0], chat, acked as usize / 200 + 10)
        .await?;
    let mut expected: Vec<i64> = sender_of.keys().copied().collect();
    expected.sort_unstable();
    stored.sort_unstable();
    if stored != expected {
        report.errors.push(format!(
            "the group stores {} messages, {acked} were acknowledged",
            stored.len()
        ));
    }

    let mut last: Vec<u64> = fanout.values().map(|e| e.1).collect();
    report.sent = acked;
    report.msgs_per_sec = acked as f64 / elapsed.as_secs_f64();
    report.deliveries_per_sec = report.delivered as f64 / elapsed.as_secs_f64();
    report.latencies(&mut last);
    let each = Percentiles::of(&mut per_delivery);
    report.put("members", k as u64);
    report.put("senders", senders as u64);
    report.put("rate", rate);
    report.put("deliveryP50Ms", each.p50);
    report.put("deliveryP99Ms", each.p99);
    report.put("sendSeconds", send_phase.as_secs_f64());
    report.put("seconds", elapsed.as_secs_f64());
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        report.put(
            "serverCpuPct",
            100.0 * (b - a).as_secs_f64() / elapsed.as_secs_f64(),
        );
    }
    report.rss_bytes = target.rss();
    report.connections = Some(k as u64);
    target.stop()?;
    Ok(())
}
