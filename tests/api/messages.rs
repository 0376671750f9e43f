//! Messages: sending rules, idempotency, history, edits, deletes, receipts.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn sending_is_validated() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let path = format!("/chat/{chat}/messages");
    let cases = [
        (json!({"messageType": "TEXT"}), "content"),
        (json!({"messageType": "TEXT", "content": "   "}), "content"),
        (json!({"messageType": "LINK", "content": ""}), "content"),
        (
            json!({"messageType": "TEXT", "content": "x".repeat(10_001)}),
            "content",
        ),
        (
            json!({"messageType": "SHOUT", "content": "x"}),
            "messageType",
        ),
        (json!({"content": "x"}), "messageType"),
        (
            json!({"messageType": "TEXT", "content": "x", "clientId": "c".repeat(65)}),
            "clientId",
        ),
        (json!({"messageType": "IMAGE"}), "fileUrl"),
        (
            json!({"messageType": "FILE", "fileUrl": "/uploads/chat/nothing-here"}),
            "fileUrl",
        ),
        (
            json!({"messageType": "TEXT", "content": "x", "replyToId": 999999}),
            "replyToId",
        ),
        (json!({"messageType": "TEXT", "content": 5}), "content"),
    ];
    let eve = app.register("Eve").await;
    for (body, field) in cases {
        let (status, resp) = app.post(&path, &alice, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {resp}");
        assert_eq!(resp["error"]["field"], field, "{resp}");
    }
    // someone outside the chat gets 404 whatever the body (nothing to learn
    // from its problems), as long as the body is JSON of the right shape
    for body in [
        json!({"messageType": "TEXT"}),
        json!({"messageType": "TEXT", "content": "x".repeat(10_001)}),
        json!({"messageType": "IMAGE"}),
        json!({"messageType": "TEXT", "content": "hi"}),
    ] {
        let (status, resp) = app.post(&path, &eve, body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body} → {resp}");
    }
    // 10,000 characters — counted as characters, not bytes — is fine
    let (status, m) = app
        .post(
            &path,
            &alice,
            json!({"messageType": "TEXT", "content": "é".repeat(10_000)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(m["content"].as_str().unwrap().chars().count(), 10_000);
    let (status, m) = app
        .post(
            &path,
            &alice,
            json!({"messageType": "LINK", "content": "https://natter.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(m["messageType"], "LINK");
    // a reply to a message of this chat
    let (status, reply) = app
        .post(
            &path,
            &bob,
            json!({"messageType": "TEXT", "content": "re", "replyToId": m["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(reply["replyToId"], m["id"]);
    // a reply to another chat's message is refused
    let carol = app.register("Carol").await;
    let other = app.direct_chat(&alice, &carol).await;
    let foreign = app.send(&carol, other, "elsewhere").await["id"].clone();
    let (status, _) = app
        .post(
            &path,
            &alice,
            json!({"messageType": "TEXT", "content": "re", "replyToId": foreign}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn message_object_has_every_field() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let m = app.send(&alice, chat, "hello").await;
    for field in [
        "id",
        "chatId",
        "senderId",
        "content",
        "messageType",
        "fileUrl",
        "fileName",
        "fileSize",
        "fileMimeType",
        "replyToId",
        "clientId",
        "isEdited",
        "isDeleted",
        "isRead",
        "status",
        "createdAt",
        "updatedAt",
    ] {
        assert!(m.get(field).is_some(), "message has {field}");
    }
    assert_eq!(m["chatId"], chat);
    assert_eq!(m["senderId"], alice.id);
    assert_eq!(m["status"], "SENT");
    assert_eq!(m["isRead"], false);
    assert!(m["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn client_id_makes_sending_idempotent() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let path = format!("/chat/{chat}/messages");
    let body = json!({"messageType": "TEXT", "content": "once", "clientId": "abc-123"});
    let (s1, first) = app.post(&path, &alice, body.clone()).await;
    let (s2, second) = app.post(&path, &alice, body.clone()).await;
    assert_eq!(s1, StatusCode::CREATED);
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["clientId"], "abc-123");
    // the same clientId from another sender is another message
    let (s3, third) = app.post(&path, &bob, body).await;
    assert_eq!(s3, StatusCode::CREATED);
    assert_ne!(third["id"], first["id"]);
    let (_, history) = app.get(&path, &alice).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn history_by_page_and_cursor() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut sent = Vec::new();
    for i in 0..25 {
        sent.push(
            app.send(&alice, chat, &format!("m{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let path = format!("/chat/{chat}/messages");
    let (_, p1) = app.get(&format!("{path}?limit=10&page=1"), &bob).await;
    let (_, p2) = app.get(&format!("{path}?limit=10&page=2"), &bob).await;
    let (_, p3) = app.get(&format!("{path}?limit=10&page=3"), &bob).await;
    assert_eq!(
        ids(&p1),
        sent[15..25].to_vec(),
        "page 1 = newest, oldest first"
    );
    assert_eq!(ids(&p2), sent[5..15].to_vec());
    assert_eq!(ids(&p3), sent[0..5].to_vec());
    assert_eq!(
        (p1["hasMore"].clone(), p3["hasMore"].clone()),
        (json!(true), json!(false))
    );
    // default limit from config
    let (_, default) = app.get(&path, &bob).await;
    assert_eq!(ids(&default).len(), 25);

    // walk backwards with `before` while new messages arrive: no gap, no duplicate
    let mut seen: Vec<i64> = Vec::new();
    let (_, mut page) = app.get(&format!("{path}?limit=7"), &bob).await;
    loop {
        let mut got = ids(&page);
        got.reverse();
        seen.extend(got);
        app.send(&alice, chat, "arriving meanwhile").await;
        if page["hasMore"] == false {
            break;
        }
        let oldest = page["items"][0]["id"].as_i64().unwrap();
        page = app
            .get(&format!("{path}?limit=7&before={oldest}"), &bob)
            .await
            .1;
    }
    seen.reverse();
    assert_eq!(seen, sent, "before-cursor walk saw exactly the history");

    // walk forwards with `after` from 0 while new messages arrive
    let mut forward: Vec<i64> = Vec::new();
    let mut after = 0;
    for _ in 0..100 {
        let (_, page) = app
            .get(&format!("{path}?limit=6&after={after}"), &bob)
            .await;
        forward.extend(ids(&page));
        if let Some(last) = forward.last() {
            after = *last;
        }
        if page["hasMore"] == false {
            break;
        }
        app.send(&alice, chat, "more").await;
    }
    let unique: HashSet<_> = forward.iter().collect();
    assert_eq!(unique.len(), forward.len(), "no duplicates");
    assert!(forward.windows(2).all(|w| w[0] < w[1]), "ascending");
    let (_, all) = app.get(&format!("{path}?limit=200"), &bob).await;
    assert_eq!(
        forward,
        ids(&all),
        "after-cursor walk reached the newest with no gap"
    );

    // any id works as a cursor, even another chat's
    let carol = app.register("Carol").await;
    let other = app.direct_chat(&alice, &carol).await;
    let foreign = app.send(&carol, other, "x").await["id"].as_i64().unwrap();
    let (s, p) = app
        .get(&format!("{path}?before={foreign}&limit=200"), &bob)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&p).len(), ids(&all).len());
    for bad in [
        "?limit=0",
        "?limit=201",
        "?before=-1",
        "?before=1&after=2",
        "?page=0",
        "?after=x",
    ] {
        let (s, b) = app.get(&format!("{path}{bad}"), &bob).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {b}");
    }
}

#[tokio::test]
async fn edit_and_delete_by_the_right_people() {
    let app = spawn_app().await;
    let admin = app.register("Admin").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let group = app.group(&admin, &[&bob, &carol], "G").await;
    let m = app.send(&bob, group, "original").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/chat/{group}/messages/{m}");
    let (s, _) = app.patch(&path, &carol, json!({"content": "hijack"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.patch(&path, &admin, json!({"content": "hijack"})).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "admins can't edit others' messages"
    );
    let (s, _) = app.patch(&path, &bob, json!({"content": ""})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // an outsider learns nothing, even from an invalid edit
    let eve = app.register("Eve").await;
    let (s, _) = app.patch(&path, &eve, json!({"content": ""})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, edited) = app.patch(&path, &bob, json!({"content": "fixed"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(edited["content"], "fixed");
    assert_eq!(edited["isEdited"], true);

    let (s, _) = app.delete(&path, &carol).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "another member can't delete");
    let (s, tomb) = app.delete(&path, &admin).await;
    assert_eq!(s, StatusCode::OK, "a group admin can delete");
    assert_eq!(tomb["isDeleted"], true);
    assert_eq!(tomb["content"], Value::Null);
    let (_, h) = app.get(&format!("/chat/{group}/messages"), &carol).await;
    // items[0] is the group's creation note
    assert_eq!(
        h["items"][1]["isDeleted"], true,
        "stays in history as a tombstone"
    );
    assert_eq!(h["items"][1]["content"], Value::Null);
    let (s, _) = app.patch(&path, &bob, json!({"content": "again"})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // the sender deletes their own message in a 1-on-1
    let chat = app.direct_chat(&bob, &carol).await;
    let m2 = app.send(&carol, chat, "oops").await["id"].as_i64().unwrap();
    let (s, _) = app
        .delete(&format!("/chat/{chat}/messages/{m2}"), &bob)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .delete(&format!("/chat/{chat}/messages/{m2}"), &carol)
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn unread_counts_receipts_and_status() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let group = app.group(&alice, &[&bob, &carol], "G").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(
            app.send(&alice, group, &format!("m{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let unread = |u: TestUser| {
        let app = &app;
        async move {
            app.get(&format!("/chat/{group}"), &u).await.1["unreadCount"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(unread(bob.clone()).await, 3);
    assert_eq!(
        unread(alice.clone()).await,
        0,
        "own messages are not unread"
    );
    let status_of = |id: i64| {
        let app = &app;
        let alice = alice.clone();
        async move {
            let (_, h) = app.get(&format!("/chat/{group}/messages"), &alice).await;
            h["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
                .unwrap()["status"]
                .clone()
        }
    };
    assert_eq!(status_of(sent[2]).await, "SENT");

    // bob fetches → delivered to bob; carol hasn't: still SENT
    app.get(&format!("/chat/{group}/messages"), &bob).await;
    assert_eq!(status_of(sent[2]).await, "SENT");
    app.get(&format!("/chat/{group}/messages"), &carol).await;
    assert_eq!(status_of(sent[2]).await, "DELIVERED");

    // bob reads by ids: positional, up to the newest id he names
    let (s, r) = app
        .post(
            &format!("/chat/{group}/read"),
            &bob,
            json!({"messageIds": [sent[0]]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["unreadCount"], 2);
    let (_, r) = app
        .post(
            &format!("/chat/{group}/read"),
            &bob,
            json!({"upToMessageId": sent[2]}),
        )
        .await;
    assert_eq!(r["unreadCount"], 0);
    assert_eq!(unread(bob.clone()).await, 0);
    assert_eq!(
        status_of(sent[2]).await,
        "DELIVERED",
        "carol has not read yet"
    );
    let (_, r) = app
        .post(
            &format!("/chat/{group}/read"),
            &carol,
            json!({"upToMessageId": sent[1]}),
        )
        .await;
    assert_eq!(r["unreadCount"], 1);
    assert_eq!(status_of(sent[1]).await, "READ");
    assert_eq!(status_of(sent[2]).await, "DELIVERED");

    let (s, rec) = app
        .get(
            &format!("/chat/{group}/messages/{}/receipts", sent[2]),
            &alice,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let items = rec["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "one per other member: {rec}");
    let of = |u: i64| items.iter().find(|r| r["userId"] == u).unwrap().clone();
    assert!(of(bob.id)["readAt"].is_string());
    assert!(of(bob.id)["deliveredAt"].is_string());
    assert!(of(carol.id)["deliveredAt"].is_string());
    assert!(of(carol.id)["readAt"].is_null());

    // positions never move back; an empty body is a 400
    let (_, r) = app
        .post(
            &format!("/chat/{group}/read"),
            &bob,
            json!({"upToMessageId": sent[0]}),
        )
        .await;
    assert_eq!(r["unreadCount"], 0);
    let (s, _) = app
        .post(&format!("/chat/{group}/read"), &bob, json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // new messages raise the count again; deleted ones don't count
    let m = app.send(&alice, group, "new").await["id"].as_i64().unwrap();
    app.send(&alice, group, "newer").await;
    assert_eq!(unread(bob.clone()).await, 2);
    app.delete(&format!("/chat/{group}/messages/{m}"), &alice)
        .await;
    assert_eq!(unread(bob.clone()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_senders_lose_nothing() {
    let app = Arc::new(spawn_app().await);
    let admin = app.register("Admin").await;
    let mut members = Vec::new();
    for i in 0..10 {
        members.push(app.register(&format!("M{i}")).await);
    }
    let refs: Vec<&TestUser> = members.iter().collect();
    let group = app.group(&admin, &refs, "Busy").await;
    let mut tasks = Vec::new();
    for s in 0..50 {
        let app = app.clone();
        let user = members[s % members.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..10 {
                let (status, body) = app
                    .post(
                        &format!("/chat/{group}/messages"),
                        &user,
                        json!({"messageType": "TEXT", "content": format!("s{s}-{i}")}),
                    )
                    .await;
                assert!(!status.is_server_error(), "{status} {body}");
                if status == StatusCode::CREATED {
                    ids.push(body["id"].as_i64().unwrap());
                }
            }
            ids
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        created.extend(t.await.unwrap());
    }
    assert_eq!(created.len(), 500);
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = app
            .get(
                &format!("/chat/{group}/messages?after={after}&limit=200"),
                &admin,
            )
            .await;
        let got = ids(&page);
        if let Some(last) = got.last() {
            after = *last;
        }
        // the group's creation note is not one of the sends
        history.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["messageType"] != "SYSTEM")
                .map(|m| m["id"].as_i64().unwrap()),
        );
        if page["hasMore"] == false {
            break;
        }
    }
    let mut sorted = created.clone();
    sorted.sort_unstable();
    assert_eq!(
        history, sorted,
        "every 201 message is in the history exactly once"
    );
}

#[tokio::test]
async fn replying_marks_the_chat_read_for_the_sender() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let mut alice_ws = app.ws(&alice).await;
    let first = app.send(&alice, chat, "one").await["id"].as_i64().unwrap();
    app.send(&alice, chat, "two").await;
    let (_, c) = app.get(&format!("/chat/{chat}"), &bob).await;
    assert_eq!(c["unreadCount"], 2);
    // bob answers (say from his phone) without marking anything read first
    app.send(&bob, chat, "answer").await;
    let (_, c) = app.get(&format!("/chat/{chat}"), &bob).await;
    assert_eq!(c["unreadCount"], 0, "writing in a chat reads it");
    let statuses = alice_ws
        .collect_until(
            "message:status",
            |s| s["messageId"] == first && s["status"] == "READ",
            std::time::Duration::ZERO,
        )
        .await;
    assert!(
        statuses
            .iter()
            .any(|s| s["messageId"] == first && s["status"] == "READ"),
        "alice's ticks turn blue: {statuses:?}"
    );
    // alice's own unread count now counts bob's answer
    let (_, c) = app.get(&format!("/chat/{chat}"), &alice).await;
    assert_eq!(c["unreadCount"], 1);
}
