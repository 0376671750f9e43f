//! `GET /health`.

use axum::Json;
use serde_json::{json, Value};

/// 200 once the database is open (the server does not listen before).
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
