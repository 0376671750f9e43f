//! Chats: creation, de-duplication, listing, admin rules, access control.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn direct_chats_are_not_duplicated() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let (status, first) = app
        .post(
            "/chat",
            &alice,
            json!({"participantIds": [alice.id, bob.id], "isGroup": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for field in [
        "id",
        "name",
        "isGroup",
        "groupAvatar",
        "createdAt",
        "updatedAt",
        "participants",
        "lastMessage",
        "unreadCount",
    ] {
        assert!(first.get(field).is_some(), "chat has {field}");
    }
    assert_eq!(first["participants"].as_array().unwrap().len(), 2);
    // either side, with or without the caller in the list: the same chat, 200
    let (status, again) = app
        .post(
            "/chat",
            &bob,
            json!({"participantIds": [alice.id], "isGroup": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_creates_make_one_chat() {
    let app = std::sync::Arc::new(spawn_app().await);
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (app, alice, bob) = (app.clone(), alice.clone(), bob.clone());
        tasks.push(tokio::spawn(async move {
            let (me, other) = if i % 2 == 0 {
                (&alice, &bob)
            } else {
                (&bob, &alice)
            };
            let (status, body) = app
                .post(
                    "/chat",
                    me,
                    json!({"participantIds": [other.id], "isGroup": false}),
                )
                .await;
            assert!(
                status == StatusCode::CREATED || status == StatusCode::OK,
                "{status} {body}"
            );
            (status, body["id"].as_i64().unwrap())
        }));
    }
    let mut ids = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (status, id) = t.await.unwrap();
        created += usize::from(status == StatusCode::CREATED);
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one chat id: {ids:?}");
    assert_eq!(created, 1, "exactly one 201");
    let (_, list) = app.get("/chat", &alice).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn chat_creation_is_validated() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let cases = [
        (
            json!({"participantIds": [bob.id, carol.id], "isGroup": false}),
            "participantIds",
        ),
        (
            json!({"participantIds": [alice.id], "isGroup": false}),
            "participantIds",
        ),
        (
            json!({"participantIds": [999999], "isGroup": false}),
            "participantIds",
        ),
        (json!({"participantIds": [bob.id], "isGroup": true}), "name"),
        (
            json!({"participantIds": [bob.id], "isGroup": true, "name": "  "}),
            "name",
        ),
        (
            json!({"participantIds": [bob.id], "isGroup": true, "name": "x".repeat(101)}),
            "name",
        ),
        (
            json!({"participantIds": "nope", "isGroup": true, "name": "G"}),
            "participantIds",
        ),
        (json!({"isGroup": true, "name": "G"}), "participantIds"),
    ];
    for (body, field) in cases {
        let (status, resp) = app.post("/chat", &alice, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {resp}");
        assert_eq!(resp["error"]["field"], field, "{body} → {resp}");
    }
    let too_many: Vec<i64> = (1..=1030).collect();
    let (status, _) = app
        .post(
            "/chat",
            &alice,
            json!({"participantIds": too_many, "isGroup": true, "name": "Big"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn list_orders_by_activity_with_pagination() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let with_bob = app.direct_chat(&alice, &bob).await;
    let with_carol = app.direct_chat(&alice, &carol).await;
    let group = app.group(&alice, &[&bob, &carol], "Team").await;
    app.send(&bob, with_bob, "newest activity").await;
    let (status, list) = app.get("/chat?page=1&limit=2", &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["page"], 1);
    assert_eq!(list["limit"], 2);
    assert_eq!(list["total"], 3);
    let ids: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![with_bob, group]);
    assert_eq!(
        list["items"][0]["lastMessage"]["content"],
        "newest activity"
    );
    assert_eq!(list["items"][0]["unreadCount"], 1);
    let (_, page2) = app.get("/chat?page=2&limit=2", &alice).await;
    assert_eq!(page2["items"][0]["id"], with_carol);
    for bad in [
        "/chat?limit=0",
        "/chat?limit=201",
        "/chat?page=0",
        "/chat?limit=abc",
    ] {
        let (status, body) = app.get(bad, &alice).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn group_admin_rules() {
    let app = spawn_app().await;
    let admin = app.register("Admin").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let dave = app.register("Dave").await;
    let group = app.group(&admin, &[&bob, &carol], "Team").await;
    let (_, chat) = app.get(&format!("/chat/{group}"), &bob).await;
    let admins: Vec<i64> = chat["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["isAdmin"] == true)
        .map(|p| p["user"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(admins, vec![admin.id], "the creator is the admin");
    assert!(chat["participants"][0]["joinedAt"].is_string());

    // a non-admin can't rename, add, remove or promote
    let (s, b) = app
        .patch(&format!("/chat/{group}"), &bob, json!({"name": "Mine"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "forbidden");
    let (s, _) = app
        .post(
            &format!("/chat/{group}/participants"),
            &bob,
            json!({"userIds": [dave.id]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .delete(&format!("/chat/{group}/participants/{}", carol.id), &bob)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .patch(
            &format!("/chat/{group}/participants/{}", bob.id),
            &bob,
            json!({"isAdmin": true}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // the admin can
    let (s, c) = app
        .patch(
            &format!("/chat/{group}"),
            &admin,
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["name"], "Renamed");
    let (s, c) = app
        .post(
            &format!("/chat/{group}/participants"),
            &admin,
            json!({"userIds": [dave.id]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["participants"].as_array().unwrap().len(), 4);
    let (s, _) = app.get(&format!("/chat/{group}"), &dave).await;
    assert_eq!(s, StatusCode::OK, "added member can see the chat");
    let (s, c) = app
        .patch(
            &format!("/chat/{group}/participants/{}", carol.id),
            &admin,
            json!({"isAdmin": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(c["participants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["user"]["id"] == carol.id && p["isAdmin"] == true));
    let (s, _) = app
        .patch(
            &format!("/chat/{group}/participants/{}", carol.id),
            &admin,
            json!({"isAdmin": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, c) = app
        .delete(&format!("/chat/{group}/participants/{}", dave.id), &admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let (s, _) = app.get(&format!("/chat/{group}"), &dave).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "removed member no longer sees it");
    // demoting the only admin is refused
    let (s, _) = app
        .patch(
            &format!("/chat/{group}/participants/{}", admin.id),
            &admin,
            json!({"isAdmin": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // unknown participant
    let (s, _) = app
        .delete(&format!("/chat/{group}/participants/{}", dave.id), &admin)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn last_admin_leaving_promotes_the_oldest_member() {
    let app = spawn_app().await;
    let admin = app.register("Admin").await;
    let bob = app.register("Bob").await;
    let carol = app.register("Carol").await;
    let group = app.group(&admin, &[&bob], "Team").await;
    app.post(
        &format!("/chat/{group}/participants"),
        &admin,
        json!({"userIds": [carol.id]}),
    )
    .await;
    // anyone may leave
    let (s, _) = app
        .delete(&format!("/chat/{group}/participants/{}", admin.id), &admin)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, chat) = app.get(&format!("/chat/{group}"), &carol).await;
    let parts = chat["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let bob_entry = parts.iter().find(|p| p["user"]["id"] == bob.id).unwrap();
    assert_eq!(
        bob_entry["isAdmin"], true,
        "bob joined first and is promoted"
    );
    let (s, _) = app.get(&format!("/chat/{group}"), &admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/chat", &admin).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn non_participants_get_404_everywhere() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let chat = app.direct_chat(&alice, &bob).await;
    let group = app.group(&alice, &[&bob], "G").await;
    let msg = app.send(&alice, chat, "secret").await["id"]
        .as_i64()
        .unwrap();
    let gmsg = app.send(&alice, group, "secret").await["id"]
        .as_i64()
        .unwrap();
    for (c, m) in [(chat, msg), (group, gmsg), (999_999, msg)] {
        let checks = [
            app.get(&format!("/chat/{c}"), &eve).await,
            app.patch(&format!("/chat/{c}"), &eve, json!({"name": "x"}))
                .await,
            app.post(
                &format!("/chat/{c}/participants"),
                &eve,
                json!({"userIds": [eve.id]}),
            )
            .await,
            app.delete(&format!("/chat/{c}/participants/{}", bob.id), &eve)
                .await,
            app.delete(&format!("/chat/{c}/participants/{}", eve.id), &eve)
                .await,
            app.patch(
                &format!("/chat/{c}/participants/{}", eve.id),
                &eve,
                json!({"isAdmin": true}),
            )
            .await,
            app.get(&format!("/chat/{c}/messages"), &eve).await,
            app.post(
                &format!("/chat/{c}/messages"),
                &eve,
                json!({"messageType": "TEXT", "content": "hi"}),
            )
            .await,
            app.patch(
                &format!("/chat/{c}/messages/{m}"),
                &eve,
                json!({"content": "x"}),
            )
            .await,
            app.delete(&format!("/chat/{c}/messages/{m}"), &eve).await,
            app.get(&format!("/chat/{c}/messages/{m}/receipts"), &eve)
                .await,
            app.post(
                &format!("/chat/{c}/read"),
                &eve,
                json!({"upToMessageId": m}),
            )
            .await,
        ];
        for (i, (status, body)) in checks.into_iter().enumerate() {
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "check {i} on chat {c}: {body}"
            );
            assert_eq!(body["error"]["code"], "not_found");
        }
    }
    // a message id of another chat is not found through a chat the caller is in
    let own = app.direct_chat(&eve, &bob).await;
    let (s, _) = app
        .patch(
            &format!("/chat/{own}/messages/{msg}"),
            &eve,
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .delete(&format!("/chat/{own}/messages/{msg}"), &eve)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .get(&format!("/chat/{own}/messages/{msg}/receipts"), &eve)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // and the history is untouched
    let (_, h) = app.get(&format!("/chat/{chat}/messages"), &alice).await;
    assert_eq!(h["items"][0]["content"], "secret");
    // non-integer ids are a 400
    let (s, _) = app.get("/chat/abc", &alice).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Issue 13, bug 4: people who left stay resolvable (name, avatar) for
/// members who share no other chat with them.
#[tokio::test]
async fn former_members_stay_resolvable() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let cara = app.register("Cara").await;
    let chat = app.group(&ana, &[&bob, &cara], "Trip").await;
    let (_, fresh) = app.get(&format!("/chat/{chat}"), &cara).await;
    assert_eq!(fresh["formerParticipants"], json!([]));
    app.send(&bob, chat, "I can drive").await;
    let mut cara_ws = app.ws(&cara).await;
    let (status, _) = app
        .delete(&format!("/chat/{chat}/participants/{}", bob.id), &bob)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let check = |chat: &serde_json::Value| {
        let former = chat["formerParticipants"].as_array().unwrap();
        assert_eq!(former.len(), 1, "{chat}");
        assert_eq!(former[0]["user"]["id"], bob.id);
        assert_eq!(former[0]["user"]["name"], "Bob");
        assert!(former[0]["user"].get("avatarUrl").is_some());
        assert!(former[0]["leftAt"].as_str().unwrap().ends_with('Z'));
        assert!(chat["participants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["user"]["id"] != bob.id));
    };
    let updated = cara_ws.expect_event("chat:updated").await;
    check(&updated);
    let (_, one) = app.get(&format!("/chat/{chat}"), &cara).await;
    check(&one);
    let (_, list) = app.get("/chat", &cara).await;
    check(&list["items"][0]);

    // added back: a member again, no longer former
    let (status, back) = app
        .post(
            &format!("/chat/{chat}/participants"),
            &ana,
            json!({"userIds": [bob.id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(back["formerParticipants"], json!([]));
}
