//! Extractors whose rejections are [`AppError`]s: bad JSON, paths and queries
//! become 400 (413 for an oversized body), never a 500 or a plain-text body.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A JSON body. The Content-Type is not required (curl users forget it).
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(ref inner)
                if inner.to_string().contains("length limit") =>
            {
                AppError::TooLarge("request body is too large".into())
            }
            _ if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                AppError::TooLarge("request body is too large".into())
            }
            _ => AppError::invalid("body", "could not read the request body"),
        })?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Parses JSON, naming the field that is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::invalid("body", "a JSON body is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // "missing field `email` at line 1 column 2" → field "email"
        let field = if let Some(rest) = msg.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or_default();
            if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        } else if path == "." || path == "?" {
            "body".to_string()
        } else {
            path
        };
        let reason = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        AppError::invalid(field.clone(), format!("{field}: {reason}"))
    })
}

/// Query parameters.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| AppQuery(v))
            .map_err(|e: QueryRejection| {
                let text = e.body_text();
                let reason = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // serde names the parameter first: "limit: invalid digit …"
                let field = reason
                    .split_once(": ")
                    .map(|(name, _)| name)
                    .filter(|n| {
                        !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                    .unwrap_or("query");
                AppError::invalid(field, format!("invalid query: {reason}"))
            })
    }
}

/// Path parameters (ids must be integers).
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| AppPath(v))
            .map_err(|_: PathRejection| AppError::invalid("id", "ids in the path must be integers"))
    }
}
