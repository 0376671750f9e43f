//! `GET /config`: public settings clients check before they ask.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn config_is_public_and_reflects_the_flags() {
    let app = spawn_app().await;
    let (status, body) = app.call(Method::GET, "/config", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"uploadMaxSize": 52_428_800, "messageMaxLength": 10000,
               "deleteWindowSeconds": null, "registration": "open"})
    );

    let app = spawn_with(|a| {
        a.upload_max_size = 1234;
        a.delete_window = 3600;
        a.registration = natter::config::Registration::Closed;
    })
    .await;
    let (status, body) = app.call(Method::GET, "/config", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"uploadMaxSize": 1234, "messageMaxLength": 10000,
               "deleteWindowSeconds": 3600, "registration": "closed"})
    );
}
