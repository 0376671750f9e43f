//! `bench startup`: time from exec of `natter serve` to `/health` answering
//! 200 (median of several starts on fresh data dirs), the idle server's RSS
//! and the binary's size. Check: one live message delivered once and stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::load::roundtrip;
use super::server::{Api, Target};
use super::{BenchArgs, Progress, Report};

/// Fresh starts measured.
const STARTS: usize = 5;

/// Runs the scenario into `report`.
pub async fn run(
    args: &BenchArgs,
    progress: &Arc<Progress>,
    report: &mut Report,
) -> anyhow::Result<()> {
    if args.url.is_some() {
        bail!("startup starts natter itself; it takes no --url");
    }
    let exe = std::env::current_exe().context("cannot find the natter binary")?;
    let binary = std::fs::metadata(&exe)?.len();
    let mut times = Vec::new();
    let mut idle_rss = None;
    for run in 0..STARTS {
        progress.set_stage(&format!("start {}/{STARTS}", run + 1));
        let dir = tempfile::Builder::new().prefix("natter-bench").tempdir()?;
        let mut target = Target::spawn(dir.path(), args.durability)?;
        let started = target.started.context("child start time")?;
        let api = Api::new(&target.base)?;
        let deadline = started + Duration::from_secs(30);
        loop {
            if api.healthy().await {
                break;
            }
            if Instant::now() > deadline {
                bail!("/health did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(started.elapsed().as_micros() as u64);
        if run == STARTS - 1 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            idle_rss = target.rss();
            progress.set_stage("checking");
            let rt = roundtrip(&api).await?;
            report.sent = 1;
            report.delivered = rt.delivered;
            report.lost = u64::from(rt.delivered == 0);
            report.duplicates = rt.delivered.saturating_sub(1);
            report.put("roundtripMs", rt.latency_ms);
            report.put("rssAfterRoundtripBytes", target.rss().unwrap_or(0));
        }
        target.stop()?;
    }
    report.latencies(&mut times);
    report.startup_ms = Some(report.p50_ms);
    report.rss_bytes = idle_rss;
    report.put("starts", STARTS as u64);
    report.put("binaryBytes", binary);
    report.put("binary", exe.display().to_string());
    Ok(())
}
