//! `GET /health`.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// 200 once the database is open (the server does not listen before).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "the server is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}
