//! `GET /api/openapi.json`: the document lists exactly the router's routes
//! (read from `src/http/mod.rs`, so neither can drift), every listed
//! operation is served, and the security requirements match the contract.
//! Also the regressions found by `tests/fuzz/run.sh`.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `/chat/{id}/participants/{user_id}` → `/chat/{}/participants/{}`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// The routes of `router()`: each `.route("path", get(..).post(..))` call in
/// `src/http/mod.rs`, as path shape → methods.
fn router_routes() -> BTreeMap<String, BTreeSet<String>> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs"))
        .expect("read src/http/mod.rs");
    let mut routes = BTreeMap::new();
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.trim_start();
        let path = chunk
            .strip_prefix('"')
            .and_then(|rest| rest.split('"').next())
            .expect("a .route( call starts with a string literal");
        // The method router runs to the parenthesis closing `.route(`.
        let mut depth = 1;
        let mut end = chunk.len();
        for (i, c) in chunk.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = &chunk[..end];
        let mut methods = BTreeSet::new();
        for m in METHODS {
            let call = format!("{m}(");
            let mut from = 0;
            while let Some(at) = body[from..].find(&call) {
                let at = from + at;
                let before = body[..at].chars().last().unwrap_or(' ');
                if !before.is_alphanumeric() && before != '_' && before != ':' {
                    methods.insert(m.to_string());
                }
                from = at + call.len();
            }
        }
        assert!(!methods.is_empty(), "no methods found for route {path}");
        routes.insert(shape(path), methods);
    }
    assert!(routes.len() > 10, "parsed too few routes: {routes:?}");
    routes
}

async fn document() -> (crate::helpers::TestApp, Value) {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let doc: Value = resp.json().await.unwrap();
    (app, doc)
}

fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .cloned()
                .collect();
            (shape(path), methods)
        })
        .collect()
}

#[tokio::test]
async fn document_lists_exactly_the_routes_of_the_router() {
    let (_app, doc) = document().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(documented(&doc), router_routes());
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let (app, doc) = document().await;
    let user = app.register("doc").await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|seg| match seg {
                "{name}" => "x",
                s if s.starts_with('{') => "1",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = app.call(m, &concrete, Some(&user.token), None).await;
            let fallback = body["error"]["message"] == "no such endpoint" && path != "/metrics";
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && !fallback,
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn security_matches_the_contract() {
    let (_app, doc) = document().await;
    let public = [
        "post /auth/register",
        "post /auth/login",
        "post /auth/logout",
        "get /health",
        "get /config",
        "get /api/openapi.json",
        "get /push/key",
    ];
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let key = format!("{method} {path}");
            let names: Vec<String> = op["security"]
                .as_array()
                .map(|reqs| {
                    reqs.iter()
                        .flat_map(|r| r.as_object().unwrap().keys().cloned())
                        .collect()
                })
                .unwrap_or_default();
            if public.contains(&key.as_str()) {
                assert!(names.is_empty(), "{key} must not need auth: {names:?}");
            } else if path == "/metrics" {
                assert_eq!(names, ["metrics_token"], "{key}");
            } else {
                assert!(names.contains(&"bearer".to_string()), "{key}: {names:?}");
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("401") || path == "/uploads/chat/{name}");
            }
        }
    }
}

#[tokio::test]
async fn documented_status_codes_match_the_handlers() {
    let (_app, doc) = document().await;
    let statuses = |method: &str, path: &str| -> BTreeSet<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    for (method, path, expected) in [
        ("post", "/auth/register", &["201"][..]),
        ("post", "/auth/login", &["200"]),
        ("post", "/auth/logout", &["204"]),
        ("post", "/chat", &["200", "201"]),
        ("post", "/chat/{id}/messages", &["200", "201"]),
        (
            "delete",
            "/chat/{id}/participants/{userId}",
            &["200", "204"],
        ),
        ("post", "/chat/upload", &["201"]),
    ] {
        let got = statuses(method, path);
        for s in expected {
            assert!(got.contains(*s), "{method} {path}: {s} missing in {got:?}");
        }
        let successes: Vec<_> = got.iter().filter(|s| s.starts_with('2')).collect();
        assert_eq!(successes.len(), expected.len(), "{method} {path}: {got:?}");
    }
    for (method, path) in [
        ("post", "/auth/register"),
        ("post", "/auth/login"),
        ("post", "/chat/{id}/messages"),
        ("post", "/chat/upload"),
    ] {
        assert!(statuses(method, path).contains("429"), "{method} {path}");
    }
    let limit = doc["paths"]["/chat"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()
        .clone();
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 200);
}

/// Found by the fuzz run: a multipart body without a boundary got axum's
/// plain-text 400 instead of the contract's JSON error.
#[tokio::test]
async fn upload_with_a_bad_multipart_body_is_a_json_400() {
    let app = spawn_app().await;
    let user = app.register("up").await;
    for content_type in [None, Some("multipart/form-data"), Some("text/plain")] {
        let mut req = app
            .client
            .post(format!("{}/chat/upload", app.base))
            .bearer_auth(&user.token)
            .body("not multipart");
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{content_type:?}");
        let body: Value = resp.json().await.expect("a JSON error body");
        assert_eq!(body["error"]["code"], "invalid_input");
        assert_eq!(body["error"]["field"], "file");
    }
}
