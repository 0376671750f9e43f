//! Voice messages: audio uploads sniffed by their bytes, the `FILE` message
//! with `durationMs` and `waveform` checked by the server, and the
//! `played` receipt (REST and `message:played`), its `message:status` to
//! the sender, `playedBy` in history and `playedAt` in receipts.

use std::time::Duration;

use base64::Engine;
use reqwest::multipart::Part;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn bars() -> String {
    base64::engine::general_purpose::STANDARD.encode((0..64u8).map(|i| i * 3).collect::<Vec<_>>())
}

/// Uploads `bytes` named `name` (declared `mime`); returns the answer.
async fn upload(
    app: &TestApp,
    user: &TestUser,
    bytes: Vec<u8>,
    name: &str,
    mime: &str,
) -> (StatusCode, Value) {
    let part = Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    upload_part(app, user, part).await
}

/// A recording as Chromium's MediaRecorder makes it (WebM, one Opus track).
fn recording() -> Vec<u8> {
    let mut bytes = natter::audio::webm_head_for_tests(&[2]);
    bytes.extend(std::iter::repeat_n(0x55, 4000));
    bytes
}

/// The next `message:status` with `status: "PLAYED"`.
async fn played_event(ws: &mut WsClient) -> Value {
    let got = ws
        .collect_until(
            "message:status",
            |e| e["status"] == "PLAYED",
            Duration::ZERO,
        )
        .await;
    got.into_iter()
        .find(|e| e["status"] == "PLAYED")
        .expect("a PLAYED message:status")
}

async fn send_voice(
    app: &TestApp,
    user: &TestUser,
    chat: i64,
    file_url: &str,
    body: Value,
) -> (StatusCode, Value) {
    let mut send =
        json!({"messageType": "FILE", "fileUrl": file_url, "durationMs": 2300, "waveform": bars()});
    if let (Some(s), Some(extra)) = (send.as_object_mut(), body.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    app.post(&format!("/chat/{chat}/messages"), user, send)
        .await
}

#[tokio::test]
async fn audio_is_known_by_its_bytes_and_a_recording_that_is_not_audio_is_refused() {
    let app = spawn_app().await;
    let (ana, bob) = (app.register("Ana").await, app.register("Bob").await);
    let chat = app.direct_chat(&ana, &bob).await;

    // A WebM of one audio track is audio, whatever it is called.
    let (status, up) = upload(&app, &ana, recording(), "blob", "video/webm").await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!(up["fileMimeType"], "audio/webm");
    // A WebM with a video track is not; nor a PNG or text named .ogg.
    let mut video = natter::audio::webm_head_for_tests(&[1, 2]);
    video.extend([0u8; 100]);
    let (_, vid) = upload(&app, &ana, video, "clip.webm", "audio/webm").await;
    assert_eq!(vid["fileMimeType"], "video/webm");
    let png = image_bytes(4, 4, image::ImageFormat::Png);
    let (_, png) = upload(&app, &ana, png, "voice.ogg", "audio/ogg").await;
    assert_eq!(png["fileMimeType"], "image/png");
    let (_, text) = upload(
        &app,
        &ana,
        b"hello, not audio".to_vec(),
        "voice.mp3",
        "audio/mpeg",
    )
    .await;
    assert_eq!(
        text["fileMimeType"], "application/octet-stream",
        "an audio type never comes from the name"
    );

    for not_audio in [&vid, &png, &text] {
        let (status, body) = send_voice(
            &app,
            &ana,
            chat,
            not_audio["fileUrl"].as_str().unwrap(),
            json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["field"], "fileUrl");
    }

    // The size cap applies to recordings as to any upload.
    let small = spawn_with(|a| a.upload_max_size = 1000).await;
    let carl = small.register("Carl").await;
    let (status, body) = upload(&small, &carl, recording(), "voice.weba", "audio/webm").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // Served inline as audio, nosniff, sandboxed, private.
    let url = up["fileUrl"].as_str().unwrap();
    let resp = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "audio/webm");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    let resp = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "not sent yet: only its uploader"
    );
}

#[tokio::test]
async fn a_voice_message_is_a_file_with_a_checked_duration_and_waveform() {
    let app = spawn_app().await;
    let (ana, bob, eve) = (
        app.register("Ana").await,
        app.register("Bob").await,
        app.register("Eve").await,
    );
    let chat = app.direct_chat(&ana, &bob).await;
    let (_, up) = upload(&app, &ana, recording(), "voice-note.weba", "audio/webm").await;
    let url = up["fileUrl"].as_str().unwrap();

    for (extra, field) in [
        (json!({"durationMs": 0}), "durationMs"),
        (json!({"durationMs": 3_600_001}), "durationMs"),
        (json!({"durationMs": null}), "durationMs"),
        (json!({"waveform": null}), "waveform"),
        (json!({"waveform": "%%%"}), "waveform"),
        (
            json!({"waveform": base64::engine::general_purpose::STANDARD.encode([1u8; 257])}),
            "waveform",
        ),
        (json!({"messageType": "IMAGE"}), "messageType"),
        (json!({"durationMs": "long"}), "durationMs"),
    ] {
        let (status, body) = send_voice(&app, &ana, chat, url, extra.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {body}");
        assert_eq!(body["error"]["field"], field, "{extra}: {body}");
    }
    // An outsider learns nothing from a bad body.
    let (status, _) = send_voice(&app, &eve, chat, url, json!({"durationMs": 0})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Someone else's recording is not yours to send.
    let (status, body) = send_voice(&app, &bob, chat, url, json!({})).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("fileUrl"))
    );

    let mut ws = app.ws(&bob).await;
    let (status, sent) = send_voice(&app, &ana, chat, url, json!({"clientId": "v-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["messageType"], "FILE", "old clients see a file");
    assert_eq!(sent["fileMimeType"], "audio/webm");
    assert_eq!(sent["fileName"], "voice-note.weba");
    assert_eq!(sent["durationMs"], 2300);
    assert_eq!(sent["waveform"], bars());
    assert_eq!(sent["playedBy"], json!([]));
    assert_eq!(sent["linkPreview"], Value::Null);
    let pushed = ws.expect_event("message:new").await;
    assert_eq!(pushed["durationMs"], 2300);
    assert_eq!(pushed["waveform"], bars());
    // A retry is the same message.
    let (status, again) = send_voice(&app, &ana, chat, url, json!({"clientId": "v-1"})).await;
    assert_eq!(
        (status, again["id"].clone()),
        (StatusCode::OK, sent["id"].clone())
    );
    // History carries it; a text message has no voice fields.
    let text = app.send(&ana, chat, "plain").await;
    assert_eq!(
        (text["durationMs"].clone(), text["waveform"].clone()),
        (Value::Null, Value::Null)
    );
    let (_, page) = app.get(&format!("/chat/{chat}/messages"), &bob).await;
    let voice = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == sent["id"])
        .unwrap();
    assert_eq!(voice["durationMs"], 2300);
    // Bob can now fetch the recording; a deleted voice message loses it all.
    let resp = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = sent["id"].as_i64().unwrap();
    let (_, tomb) = app
        .delete(&format!("/chat/{chat}/messages/{id}"), &ana)
        .await;
    assert_eq!(
        (
            tomb["durationMs"].clone(),
            tomb["waveform"].clone(),
            tomb["fileUrl"].clone()
        ),
        (Value::Null, Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn the_played_receipt_turns_the_senders_mic_blue() {
    let app = spawn_app().await;
    let (ana, bob, cara, eve) = (
        app.register("Ana").await,
        app.register("Bob").await,
        app.register("Cara").await,
        app.register("Eve").await,
    );
    let group = app.group(&ana, &[&bob, &cara], "Band").await;
    let (_, up) = upload(&app, &ana, recording(), "v.weba", "audio/webm").await;
    let (_, voice) = send_voice(
        &app,
        &ana,
        group,
        up["fileUrl"].as_str().unwrap(),
        json!({}),
    )
    .await;
    let id = voice["id"].as_i64().unwrap();
    let text = app.send(&ana, group, "not a voice note").await;
    let mut ana_ws = app.ws(&ana).await;
    let mut bob_ws = app.ws(&bob).await;

    // Only voice messages of the chat, only for members.
    let played = format!("/chat/{group}/played");
    let (status, body) = app
        .post(&played, &bob, json!({"messageId": text["id"]}))
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("messageId"))
    );
    let (status, _) = app.post(&played, &eve, json!({"messageId": id})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let other = app.direct_chat(&bob, &eve).await;
    let (status, _) = app
        .post(
            &format!("/chat/{other}/played"),
            &bob,
            json!({"messageId": id}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a message of another chat");
    let (status, body) = app.post(&played, &bob, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // The sender playing their own records nothing.
    let (status, own) = app.post(&played, &ana, json!({"messageId": id})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (own["playedAt"].clone(), own["playedBy"].clone()),
        (Value::Null, json!([]))
    );

    let (status, first) = app.post(&played, &bob, json!({"messageId": id})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["playedBy"], json!([bob.id]));
    assert!(first["playedAt"].is_string());
    let event = played_event(&mut ana_ws).await;
    assert_eq!(event["messageId"], id);
    assert_eq!(event["userId"], bob.id);
    assert_eq!(event["playedBy"], json!([bob.id]));
    // Bob's own devices learn it too.
    let mine = played_event(&mut bob_ws).await;
    assert_eq!(mine["userId"], bob.id);
    // Again: the same answer, no new event.
    let (_, again) = app.post(&played, &bob, json!({"messageId": id})).await;
    assert_eq!(again["playedAt"], first["playedAt"]);
    let later = ana_ws
        .collect_events("message:status", Duration::from_millis(300))
        .await;
    assert!(later.iter().all(|e| e["status"] != "PLAYED"), "{later:?}");

    // Over the WebSocket, as `message:played`.
    let mut cara_ws = app.ws(&cara).await;
    let ack = cara_ws
        .request("message:played", json!({"chatId": group, "messageId": id}))
        .await;
    assert_eq!(ack["event"], "ack", "{ack}");
    assert_eq!(ack["data"]["playedBy"], json!([bob.id, cara.id]));
    let bad = cara_ws
        .request(
            "message:played",
            json!({"chatId": group, "messageId": text["id"]}),
        )
        .await;
    assert_eq!(bad["event"], "error", "{bad}");

    // History shows who played; receipts say when; playing read it.
    let (_, page) = app.get(&format!("/chat/{group}/messages"), &ana).await;
    let m = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(m["playedBy"], json!([bob.id, cara.id]));
    let (_, receipts) = app
        .get(&format!("/chat/{group}/messages/{id}/receipts"), &ana)
        .await;
    for r in receipts["items"].as_array().unwrap() {
        assert!(r["playedAt"].is_string(), "{r}");
        assert!(r["readAt"].is_string(), "playing reads it: {r}");
    }
    assert_eq!(m["status"], "READ");
}

/// The Ana→Bob recording of [`the_played_receipt_turns_the_senders_mic_blue`]
/// survives a restart (the columns and table are real storage).
#[tokio::test]
async fn voice_fields_and_plays_survive_a_restart() {
    let app = spawn_app().await;
    let (ana, bob) = (app.register("Ana").await, app.register("Bob").await);
    let chat = app.direct_chat(&ana, &bob).await;
    let (_, up) = upload(&app, &ana, recording(), "v.weba", "audio/webm").await;
    let (_, voice) = send_voice(&app, &ana, chat, up["fileUrl"].as_str().unwrap(), json!({})).await;
    let id = voice["id"].as_i64().unwrap();
    let (status, _) = app
        .post(
            &format!("/chat/{chat}/played"),
            &bob,
            json!({"messageId": id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let (_, page) = app.get(&format!("/chat/{chat}/messages"), &ana).await;
    let m = &page["items"][0];
    assert_eq!(
        (
            m["durationMs"].clone(),
            m["waveform"].clone(),
            m["playedBy"].clone()
        ),
        (json!(2300), json!(bars()), json!([bob.id]))
    );
}
