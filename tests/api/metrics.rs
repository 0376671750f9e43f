//! `/metrics`, request ids.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};

use crate::helpers::*;

/// Parses Prometheus text: every non-comment line is `name[{labels}] value`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.split_whitespace().nth(1).unwrap_or_default();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            }
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(name.starts_with("natter_"), "{line}");
        out.insert(name.to_string(), value);
    }
    out
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut req = app.client.get(format!("{}/metrics", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_private_and_move_with_traffic() {
    if is_cluster() {
        return; // counters are per node (each node has its /metrics)
    }
    let off = spawn_app().await;
    assert_eq!(
        scrape(&off, None).await.0,
        StatusCode::NOT_FOUND,
        "off by default"
    );

    let app = spawn_with(|a| a.metrics_token = Some("scrape-secret".into())).await;
    assert_eq!(scrape(&app, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(&app, Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, text) = scrape(&app, Some("scrape-secret")).await;
    assert_eq!(status, StatusCode::OK);
    let before = parse(&text);
    for name in [
        "natter_websocket_connections",
        "natter_users_online",
        "natter_messages_stored",
        "natter_messages_sent_total",
        "natter_messages_delivered_total",
        "natter_database_bytes",
        "natter_http_request_duration_seconds_count",
    ] {
        assert!(before.contains_key(name), "{name} in {text}");
    }

    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut ws = app.ws(&bob).await;
    for i in 0..3 {
        app.send(&alice, chat, &format!("m{i}")).await;
        ws.expect_event("message:new").await;
    }
    let after = parse(&scrape(&app, Some("scrape-secret")).await.1);
    assert_eq!(
        after["natter_messages_sent_total"] - before["natter_messages_sent_total"],
        3.0
    );
    assert_eq!(after["natter_messages_stored"], 3.0);
    assert_eq!(after["natter_messages_delivered_total"], 3.0);
    assert_eq!(after["natter_websocket_connections"], 1.0);
    assert!(after["natter_users_online"] >= 1.0);
    assert!(
        after["natter_http_request_duration_seconds_count"]
            > before["natter_http_request_duration_seconds_count"]
    );
    assert!(after["natter_database_bytes"] > 0.0);
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert!(resp
        .headers()
        .get("x-request-id")
        .is_some_and(|v| v.len() >= 16));
    let resp = app
        .client
        .request(Method::GET, format!("{}/health", app.base))
        .header("x-request-id", "from-the-proxy-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "from-the-proxy-123");
}
