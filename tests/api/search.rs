//! Search, jump and forward (issue 19): `GET /search`,
//! `GET /chat/:id/messages?around=`, `POST /chat/:id/messages {forwardedFromId}`.

use std::time::Duration;

use reqwest::multipart::Part;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// `GET /search?<query>` as `user`.
async fn search(app: &TestApp, user: &TestUser, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let qs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    app.get(&format!("/search?{}", qs.join("&")), user).await
}

/// Percent-encodes every byte but unreserved ASCII.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The message ids of a search answer, in order.
fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page}"))
        .iter()
        .map(|h| h["message"]["id"].as_i64().unwrap())
        .collect()
}

fn id(m: &Value) -> i64 {
    m["id"].as_i64().unwrap()
}

#[tokio::test]
async fn search_finds_words_newest_first_with_ranges_and_a_cursor() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let group = app.group(&ana, &[&bob], "Team").await;
    let first = id(&app.send(&ana, chat, "The release date is Friday").await);
    app.send(&bob, chat, "lunch at noon?").await;
    let second = id(&app
        .send(&bob, group, "🎉 Release party after the RELEASE")
        .await);
    let third = id(&app.send(&ana, chat, "released it, finally").await);

    // One word: whole words only, any case, newest first.
    let (s, page) = search(&app, &bob, &[("q", "release ")]).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), vec![second, first]);
    assert_eq!(page["hasMore"], false);
    let hit = &page["items"][0];
    assert_eq!(hit["chatId"], group);
    assert_eq!(hit["message"]["chatId"], group);
    assert_eq!(
        hit["message"]["content"],
        "🎉 Release party after the RELEASE"
    );
    // Code points: the emoji is one, "Release" starts at 2.
    assert_eq!(hit["ranges"], json!([[2, 9], [26, 33]]));
    assert_eq!(hit["fileNameRanges"], json!([]));

    // The last word is a prefix while typing.
    let (_, page) = search(&app, &bob, &[("q", "relea")]).await;
    assert_eq!(ids(&page), vec![third, second, first]);
    assert_eq!(page["items"][0]["ranges"], json!([[0, 8]]));
    // Two words: both must match.
    let (_, page) = search(&app, &ana, &[("q", "release fri")]).await;
    assert_eq!(ids(&page), vec![first]);
    assert_eq!(page["items"][0]["ranges"], json!([[4, 11], [20, 26]]));

    // Pages: limit, hasMore, before = the last hit's id.
    let (_, p1) = search(&app, &bob, &[("q", "relea"), ("limit", "2")]).await;
    assert_eq!(ids(&p1), vec![third, second]);
    assert_eq!(p1["hasMore"], true);
    let before = second.to_string();
    let (_, p2) = search(
        &app,
        &bob,
        &[("q", "relea"), ("limit", "2"), ("before", &before)],
    )
    .await;
    assert_eq!(ids(&p2), vec![first]);
    assert_eq!(p2["hasMore"], false);

    // chatId narrows to one chat.
    let group_s = group.to_string();
    let (_, page) = search(&app, &bob, &[("q", "release"), ("chatId", &group_s)]).await;
    assert_eq!(ids(&page), vec![second]);
    // Nothing matches: 200 and no items.
    let (s, page) = search(&app, &bob, &[("q", "zebra")]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&page), Vec::<i64>::new());
}

#[tokio::test]
async fn search_is_case_and_accent_insensitive_and_finds_file_names() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let zoe = id(&app.send(&ana, chat, "Ask Zoë about the café").await);
    let part = Part::bytes(b"quarterly numbers".to_vec())
        .file_name("Budget-2027 final.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let (s, up) = upload_part(&app, &ana, part).await;
    assert_eq!(s, StatusCode::CREATED, "{up}");
    let (s, file) = app
        .post(
            &format!("/chat/{chat}/messages"),
            &ana,
            json!({"messageType": "FILE", "fileUrl": up["fileUrl"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{file}");

    let (_, page) = search(&app, &bob, &[("q", "budget")]).await;
    assert_eq!(ids(&page), vec![id(&file)]);
    assert_eq!(page["items"][0]["fileNameRanges"], json!([[0, 6]]));
    assert_eq!(page["items"][0]["ranges"], json!([]));
    let (_, page) = search(&app, &bob, &[("q", "ZOË")]).await;
    assert_eq!(ids(&page), vec![zoe]);
    assert_eq!(page["items"][0]["ranges"], json!([[4, 7]]));
    if !is_postgres() {
        // SQLite folds accents (PostgreSQL's `simple` index keeps them: docs/API.md).
        let (_, page) = search(&app, &bob, &[("q", "zoe cafe")]).await;
        assert_eq!(ids(&page), vec![zoe]);
        assert_eq!(page["items"][0]["ranges"], json!([[4, 7], [18, 22]]));
    }
}

#[tokio::test]
async fn search_input_is_text_never_query_syntax() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let m = id(&app
        .send(&ana, chat, "meet near the OR entrance, not -far")
        .await);
    for q in [
        "\"",
        "\"near",
        "near\"",
        "*",
        "near*",
        "-far",
        "NEAR",
        "OR",
        "near OR",
        "^near",
        "NEAR(meet entrance)",
        "meet AND",
        "a:b",
        "(",
        ")",
        "{",
        "'",
        "\\",
        "%",
        "_",
        "né*ar",
        "col:meet",
        "+",
        "~",
        "\u{0}",
        "🎉",
        "\"\"\"",
        "meet NOT far",
        "--",
        "||",
    ] {
        let (s, page) = search(&app, &bob, &[("q", q)]).await;
        assert_eq!(s, StatusCode::OK, "q={q:?}: {page}");
        assert!(page["items"].is_array(), "q={q:?}: {page}");
    }
    // Operators are words: "OR" and "NEAR" find the message that has them.
    let (_, page) = search(&app, &bob, &[("q", "near OR")]).await;
    assert_eq!(ids(&page), vec![m]);
    let (_, page) = search(&app, &bob, &[("q", "\"meet near")]).await;
    assert_eq!(ids(&page), vec![m]);
    let (_, page) = search(&app, &bob, &[("q", "-far")]).await;
    assert_eq!(ids(&page), vec![m]);
    let (_, page) = search(&app, &bob, &[("q", "NOT meet")]).await;
    assert_eq!(ids(&page), vec![m]);

    // Bad parameters: 400 naming the field.
    for (query, field) in [
        (vec![], "q"),
        (vec![("q", "   ")], "q"),
        (vec![("q", "a"), ("limit", "0")], "limit"),
        (vec![("q", "a"), ("limit", "201")], "limit"),
        (vec![("q", "a"), ("before", "x")], "before"),
        (vec![("q", "a"), ("chatId", "x")], "chatId"),
    ] {
        let (s, body) = search(&app, &bob, &query).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input");
        assert_eq!(body["error"]["field"], field, "{query:?}: {body}");
    }
    let long = "a".repeat(201);
    let (s, body) = search(&app, &bob, &[("q", &long)]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "q");
    // No token: 401.
    let (s, _) = app
        .call(reqwest::Method::GET, "/search?q=meet", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn search_shows_only_what_the_caller_may_see() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let cat = app.register("Cat").await;
    let group = app.group(&ana, &[&bob], "Secret plans").await;
    let before_cat = id(&app.send(&ana, group, "pineapple before Cat joined").await);
    // Eve is in no chat with them: she never sees their words.
    let eves = app.direct_chat(&eve, &cat).await;
    let eve_msg = id(&app.send(&eve, eves, "pineapple from Eve").await);
    let (s, _) = app
        .post(
            &format!("/chat/{group}/participants"),
            &ana,
            json!({"userIds": [cat.id]}),
        )
        .await;
    assert!(s.is_success());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after_cat = id(&app.send(&bob, group, "pineapple after Cat joined").await);

    let (_, page) = search(&app, &eve, &[("q", "pineapple")]).await;
    assert_eq!(ids(&page), vec![eve_msg]);
    // Cat: not from before she joined, and not Eve's chat with... her own, yes.
    let (_, page) = search(&app, &cat, &[("q", "pineapple")]).await;
    assert_eq!(ids(&page), vec![after_cat, eve_msg]);
    let (_, page) = search(&app, &ana, &[("q", "pineapple")]).await;
    assert_eq!(ids(&page), vec![after_cat, before_cat]);
    // chatId of a chat Eve is not in: 404, exactly as an unknown chat.
    let g = group.to_string();
    let (s, body) = search(&app, &eve, &[("q", "pineapple"), ("chatId", &g)]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let (s2, body2) = search(&app, &eve, &[("q", "pineapple"), ("chatId", "999999")]).await;
    assert_eq!((s2, &body2["error"]["code"]), (s, &body["error"]["code"]));

    // Deleted for everyone: gone from search; edited: found by the new words only.
    let (s, _) = app
        .delete(&format!("/chat/{group}/messages/{before_cat}"), &ana)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .patch(
            &format!("/chat/{group}/messages/{after_cat}"),
            &bob,
            json!({"content": "mango after all"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, page) = search(&app, &ana, &[("q", "pineapple")]).await;
    assert_eq!(ids(&page), Vec::<i64>::new());
    let (_, page) = search(&app, &cat, &[("q", "mango")]).await;
    assert_eq!(ids(&page), vec![after_cat]);
    assert_eq!(page["items"][0]["ranges"], json!([[0, 5]]));

    // Deleted for me: gone for Cat only.
    let (s, _) = app
        .delete(&format!("/chat/{group}/messages/{after_cat}?for=me"), &cat)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, page) = search(&app, &cat, &[("q", "mango")]).await;
    assert_eq!(ids(&page), Vec::<i64>::new());
    let (_, page) = search(&app, &bob, &[("q", "mango")]).await;
    assert_eq!(ids(&page), vec![after_cat]);
    // Left the group: nothing of it any more.
    let (s, _) = app
        .delete(&format!("/chat/{group}/participants/{}", bob.id), &bob)
        .await;
    assert!(s.is_success());
    let (_, page) = search(&app, &bob, &[("q", "mango")]).await;
    assert_eq!(ids(&page), Vec::<i64>::new());
    // Cleared chat: nothing up to the clear.
    let (s, _) = app
        .post(&format!("/chat/{group}/clear"), &ana, json!({}))
        .await;
    assert!(s.is_success(), "clear: {s}");
    let (_, page) = search(&app, &ana, &[("q", "mango")]).await;
    assert_eq!(ids(&page), Vec::<i64>::new());
}

#[tokio::test]
async fn retention_removes_messages_from_the_index() {
    if is_cluster() {
        return; // ages rows by hand on one node's sweep; files.rs covers retention
    }
    let app = spawn_with(|a| {
        a.history_days = 1;
        a.sweep_interval = 1;
    })
    .await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let old = id(&app.send(&ana, chat, "ancient kumquat").await);
    let kept = id(&app.send(&ana, chat, "fresh kumquat").await);
    let three_days_ago = now_secs() * 1000 - 3 * 86_400_000;
    app.exec_sql(&format!(
        "UPDATE messages SET created_at = {three_days_ago} WHERE id = {old}"
    ))
    .await;
    // The sweep ran once the aged message is gone from history.
    let mut history = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        history = page_ids(&app.get(&format!("/chat/{chat}/messages"), &bob).await.1);
        if history == vec![kept] {
            break;
        }
    }
    assert_eq!(history, vec![kept]);
    let found = ids(&search(&app, &bob, &[("q", "kumquat")]).await.1);
    assert_eq!(found, vec![kept]);
    if !is_postgres() {
        // The index itself forgot it (not only the join).
        let n = app
            .query_i64("SELECT count(*) FROM message_search WHERE message_search MATCH 'ancient'")
            .await;
        assert_eq!(n, 0);
        let n = app
            .query_i64("SELECT count(*) FROM message_search WHERE message_search MATCH 'fresh'")
            .await;
        assert_eq!(n, 1);
    }
}

/// Sends `n` texts "m0".."m{n-1}"; returns their ids.
async fn send_many(app: &TestApp, user: &TestUser, chat: i64, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(id(&app.send(user, chat, &format!("m{i}")).await));
    }
    out
}

fn page_ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page}"))
        .iter()
        .map(id)
        .collect()
}

#[tokio::test]
async fn around_returns_the_page_centred_on_a_message() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let chat = app.direct_chat(&ana, &bob).await;
    let sent = send_many(&app, &ana, chat, 30).await;

    let (s, page) = app
        .get(
            &format!("/chat/{chat}/messages?around={}&limit=5", sent[10]),
            &bob,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page_ids(&page), sent[8..13].to_vec());
    assert_eq!(page["hasMoreBefore"], true);
    assert_eq!(page["hasMoreAfter"], true);
    // Near the start: the page fills up with newer ones.
    let (_, page) = app
        .get(
            &format!("/chat/{chat}/messages?around={}&limit=6", sent[1]),
            &bob,
        )
        .await;
    assert_eq!(page_ids(&page), sent[0..6].to_vec());
    assert_eq!(page["hasMoreBefore"], false);
    assert_eq!(page["hasMoreAfter"], true);
    // The newest: older ones only.
    let (_, page) = app
        .get(
            &format!("/chat/{chat}/messages?around={}&limit=4", sent[29]),
            &bob,
        )
        .await;
    assert_eq!(page_ids(&page), sent[26..30].to_vec());
    assert_eq!(page["hasMoreBefore"], true);
    assert_eq!(page["hasMoreAfter"], false);
    // Exactly the rest on both sides.
    let (_, page) = app
        .get(
            &format!("/chat/{chat}/messages?around={}&limit=200", sent[15]),
            &bob,
        )
        .await;
    assert_eq!(page_ids(&page), sent);
    assert_eq!(
        (&page["hasMoreBefore"], &page["hasMoreAfter"]),
        (&json!(false), &json!(false))
    );
    // From there the cursors page on: before= the first, after= the last.
    let (_, older) = app
        .get(
            &format!("/chat/{chat}/messages?before={}&limit=3", sent[8]),
            &bob,
        )
        .await;
    assert_eq!(page_ids(&older), sent[5..8].to_vec());

    // Errors: another chat's message or an unknown one is 404; a stranger 404;
    // around with another cursor 400.
    let other = app.group(&ana, &[&bob], "Other").await;
    let elsewhere = id(&app.send(&ana, other, "elsewhere").await);
    for target in [elsewhere, 9_999_999] {
        let (s, body) = app
            .get(&format!("/chat/{chat}/messages?around={target}"), &bob)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }
    let eve = app.register("Eve").await;
    let (s, _) = app
        .get(&format!("/chat/{chat}/messages?around={}", sent[3]), &eve)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for extra in ["&before=5", "&after=5", "&page=2"] {
        let (s, body) = app
            .get(
                &format!("/chat/{chat}/messages?around={}{extra}", sent[3]),
                &bob,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {body}");
        assert_eq!(body["error"]["field"], "around");
    }
    // A message deleted for the caller is not theirs to jump to.
    let (s, _) = app
        .delete(&format!("/chat/{chat}/messages/{}?for=me", sent[3]), &bob)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .get(&format!("/chat/{chat}/messages?around={}", sent[3]), &bob)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forwarding_copies_text_and_files_to_another_chat() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let cat = app.register("Cat").await;
    let ana_bob = app.direct_chat(&ana, &bob).await;
    let bob_cat = app.direct_chat(&bob, &cat).await;
    let text = app.send(&ana, ana_bob, "the plan: ship on Friday").await;
    let url = upload_image(&app, &ana).await;
    let (s, photo) = app
        .post(
            &format!("/chat/{ana_bob}/messages"),
            &ana,
            json!({"messageType": "IMAGE", "fileUrl": url, "content": "look"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{photo}");
    // Cat cannot fetch Ana's photo before it is forwarded to her.
    let fetch = |token: String, url: String| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}{}", app.base, url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        fetch(cat.token.clone(), url.clone()).await,
        StatusCode::NOT_FOUND
    );

    let mut cat_ws = app.ws(&cat).await;
    let (s, fwd) = app
        .post(
            &format!("/chat/{bob_cat}/messages"),
            &bob,
            json!({"forwardedFromId": id(&text), "clientId": "fwd-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{fwd}");
    assert_eq!(fwd["isForwarded"], true);
    assert_eq!(fwd["chatId"], bob_cat);
    assert_eq!(fwd["senderId"], bob.id);
    assert_eq!(fwd["content"], "the plan: ship on Friday");
    assert_eq!(fwd["messageType"], "TEXT");
    assert_ne!(fwd["id"], text["id"]);
    let pushed = cat_ws.expect_event("message:new").await;
    assert_eq!(pushed["id"], fwd["id"]);
    assert_eq!(pushed["isForwarded"], true);
    // The same clientId again: the same message (200), not a second one.
    let (s, again) = app
        .post(
            &format!("/chat/{bob_cat}/messages"),
            &bob,
            json!({"forwardedFromId": id(&text), "clientId": "fwd-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["id"], fwd["id"]);

    // A photo: the same stored upload, which Cat may now fetch.
    let (s, fwd_photo) = app
        .post(
            &format!("/chat/{bob_cat}/messages"),
            &bob,
            json!({"messageType": "IMAGE", "forwardedFromId": id(&photo)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{fwd_photo}");
    assert_eq!(fwd_photo["messageType"], "IMAGE");
    assert_eq!(fwd_photo["fileUrl"], photo["fileUrl"]);
    assert_eq!(fwd_photo["fileName"], photo["fileName"]);
    assert_eq!(fwd_photo["fileSize"], photo["fileSize"]);
    assert_eq!(fwd_photo["content"], "look");
    assert_eq!(fwd_photo["isForwarded"], true);
    assert_eq!(fetch(cat.token.clone(), url.clone()).await, StatusCode::OK);
    if !is_cluster() {
        let uploads = app.query_i64("SELECT count(*) FROM uploads").await;
        assert_eq!(uploads, 1, "a forward stores no second file");
    }
    // The original is not marked forwarded; history shows the copy as forwarded.
    let (_, hist) = app.get(&format!("/chat/{bob_cat}/messages"), &cat).await;
    let flags: Vec<bool> = hist["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["isForwarded"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, vec![true, true]);
    let (_, orig) = app.get(&format!("/chat/{ana_bob}/messages"), &bob).await;
    assert!(orig["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["isForwarded"] == false));
    // Forwarding a forward works too.
    let (s, fwd2) = app
        .post(
            &format!("/chat/{bob_cat}/messages"),
            &cat,
            json!({"forwardedFromId": id(&fwd)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{fwd2}");
    assert_eq!(fwd2["content"], "the plan: ship on Friday");
}

#[tokio::test]
async fn forwarding_what_the_caller_cannot_see_is_404_and_bad_input_400() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let ana_bob = app.direct_chat(&ana, &bob).await;
    let eve_ana = app.direct_chat(&eve, &ana).await;
    let secret = id(&app.send(&ana, ana_bob, "secret").await);

    let send = |user: &TestUser, chat: i64, body: Value| {
        let app = &app;
        let token = user.token.clone();
        async move {
            app.call(
                reqwest::Method::POST,
                &format!("/chat/{chat}/messages"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    // Eve is not in Ana and Bob's chat: 404 exactly like an unknown id.
    let (s1, b1) = send(&eve, eve_ana, json!({"forwardedFromId": secret})).await;
    let (s2, b2) = send(&eve, eve_ana, json!({"forwardedFromId": 99_999_999})).await;
    assert_eq!(s1, StatusCode::NOT_FOUND, "{b1}");
    assert_eq!((s1, &b1), (s2, &b2));
    // Hidden for the caller: 404 too.
    let (s, _) = app
        .delete(&format!("/chat/{ana_bob}/messages/{secret}?for=me"), &bob)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let bob_self = app.group(&bob, &[], "Notes").await;
    let (s, _) = send(&bob, bob_self, json!({"forwardedFromId": secret})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Into a chat the caller is not in: 404 (the target chat).
    let (s, _) = send(&bob, eve_ana, json!({"forwardedFromId": secret})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Deleted for everyone: 409.
    let gone = id(&app.send(&ana, ana_bob, "regret").await);
    let (s, _) = app
        .delete(&format!("/chat/{ana_bob}/messages/{gone}"), &ana)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = send(&ana, eve_ana, json!({"forwardedFromId": gone})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    // A forward carries no content of its own.
    let ok = id(&app.send(&ana, ana_bob, "fine").await);
    for body in [
        json!({"forwardedFromId": ok, "content": "extra"}),
        json!({"forwardedFromId": ok, "fileUrl": "/uploads/chat/x"}),
        json!({"forwardedFromId": 0}),
        json!({"forwardedFromId": "seven"}),
    ] {
        let (s, b) = send(&ana, eve_ana, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
    }
    // Without forwardedFromId, messageType is still required.
    let (s, b) = send(&ana, eve_ana, json!({"content": "hi"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["field"], "messageType");
}

#[tokio::test]
async fn forwarding_works_over_the_websocket() {
    let app = spawn_app().await;
    let ana = app.register("Ana").await;
    let bob = app.register("Bob").await;
    let one = app.direct_chat(&ana, &bob).await;
    let two = app.group(&ana, &[&bob], "Two").await;
    let m = id(&app.send(&bob, one, "pass it on").await);
    let mut ws = app.ws(&ana).await;
    let frame = ws
        .request("message:send", json!({"chatId": two, "forwardedFromId": m}))
        .await;
    let ack = frame["data"].clone();
    assert_eq!(ack["isForwarded"], true, "{ack}");
    assert_eq!(ack["content"], "pass it on");
    assert_eq!(ack["chatId"], two);
    // The forward is found by search in its new chat too.
    let t = two.to_string();
    let (_, page) = search(&app, &bob, &[("q", "pass it"), ("chatId", &t)]).await;
    assert_eq!(ids(&page), vec![id(&ack)]);
}
