//! The measurement behind the bus's subject layout (`src/realtime/bus.rs`):
//! `cargo run --release --example bus_subjects` with NATS on 127.0.0.1:4222
//! (BENCHMARKS.md, "Many nodes"). Not part of natter.
//!
//! One publishing node and `NODES` receiving nodes (NATS connections). An
//! event goes to `members` users spread over the nodes. Layout "one": one
//! subject per cluster, one publish per event, every node receives every
//! event (natter's choice). Layout "user": one subject per user, one publish
//! per recipient, each node subscribed to its own users' subjects.
use std::time::Instant;

use futures_util::StreamExt;

const NODES: usize = 3;

async fn run(layout: &str, events: usize, members: usize, payload: usize) {
    let url = "nats://127.0.0.1:4222";
    let pubc = async_nats::connect(url).await.unwrap();
    let tag = format!("nb{}", std::process::id());
    let mut subs = Vec::new();
    let users_per_node = members / NODES;
    for n in 0..NODES {
        let c = async_nats::connect(url).await.unwrap();
        let mut streams = Vec::new();
        if layout == "one" {
            streams.push(c.subscribe(format!("{tag}.events")).await.unwrap());
        } else {
            for u in 0..users_per_node {
                let user = n * users_per_node + u;
                streams.push(c.subscribe(format!("{tag}.user.{user}")).await.unwrap());
            }
        }
        c.flush().await.unwrap();
        let expect = if layout == "one" {
            events
        } else {
            events * users_per_node
        };
        subs.push(tokio::spawn(async move {
            let mut all = futures_util::stream::select_all(streams);
            let mut got = 0;
            while got < expect {
                if all.next().await.is_none() {
                    break;
                }
                got += 1;
            }
            (c, got)
        }));
    }
    let body = bytes::Bytes::from(vec![b'x'; payload]);
    let start = Instant::now();
    for _ in 0..events {
        if layout == "one" {
            pubc.publish(format!("{tag}.events"), body.clone())
                .await
                .unwrap();
        } else {
            for user in 0..members {
                pubc.publish(format!("{tag}.user.{user}"), body.clone())
                    .await
                    .unwrap();
            }
        }
    }
    pubc.flush().await.unwrap();
    let mut received = 0;
    for s in subs {
        received += s.await.unwrap().1;
    }
    let el = start.elapsed();
    println!("layout={layout:4} members={members:5} events={events:6} payload={payload}B: {:.0} events/s, {} deliveries to nodes, {:.1} ms", events as f64 / el.as_secs_f64(), received, el.as_secs_f64()*1000.0);
}

#[tokio::main]
async fn main() {
    for (events, members) in [(20_000usize, 2usize * NODES), (2_000, 999)] {
        run("one", events, members, 600).await;
        run("user", events, members, 600).await;
    }
}
