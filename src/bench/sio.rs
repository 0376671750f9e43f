//! `--transport socketio`: the bench's client side of `/socket.io/`, speaking
//! Engine.IO v4 / Socket.IO v5 natively over a WebSocket, as the npm
//! `socket.io-client` does after its upgrade: `0{…}` open, `40{"token"}`
//! namespace connect, `42["event",data]` events, `42N[…]` with an ack id and
//! its `43N[…]` answer, ping `2` → pong `3`.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::server::{number_after, Frame, Ws, STEP_TIMEOUT};

/// Which endpoint the bench's clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transport {
    /// The native WebSocket endpoint `/ws`.
    #[default]
    Ws,
    /// The Socket.IO endpoint `/socket.io/` (WebSocket transport).
    Socketio,
}

/// The Engine.IO pong.
pub const PONG: &str = "3";

/// Opens `/socket.io/` for `token`, connects to the main namespace and waits
/// for `ready`; returns the socket and the `ready` cursor.
pub async fn connect(base: &str, token: &str) -> anyhow::Result<(Ws, i64)> {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http://", "ws://", 1)
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    .context("socket.io connect timed out")??;
    let ready = tokio::time::timeout(STEP_TIMEOUT, async {
        let mut opened = false;
        while let Some(msg) = ws.next().await {
            let WsMessage::Text(t) = msg? else { continue };
            let t = t.as_str();
            if let Some(open) = t.strip_prefix('0').filter(|_| !opened) {
                serde_json::from_str::<Value>(open).context("engine.io open")?;
                opened = true;
                let auth = serde_json::json!({ "token": token });
                ws.send(WsMessage::Text(format!("40{auth}").into())).await?;
            } else if t == "2" {
                ws.send(WsMessage::Text(PONG.into())).await?;
            } else if let Some(err) = t.strip_prefix("44") {
                bail!("socket.io connect_error: {err}");
            } else if let Some(ready) = t.strip_prefix(r#"42["ready","#) {
                let data: Value = serde_json::from_str(ready.strip_suffix(']').unwrap_or(ready))?;
                return Ok::<_, anyhow::Error>(data["cursor"].as_i64().unwrap_or(0));
            }
        }
        bail!("socket closed before ready")
    })
    .await
    .context("no ready event")??;
    Ok((ws, ready))
}

/// The `message:send` event with ack id `ack`.
pub fn send_frame(chat: i64, content: u64, ack: u64) -> String {
    format!(
        r#"42{ack}["message:send",{{"chatId":{chat},"messageType":"TEXT","content":"{content}","clientId":"b{ack}"}}]"#
    )
}

/// What a Socket.IO text frame is, read without a full JSON parse; `None`
/// for an Engine.IO ping (answer [`PONG`]).
pub fn classify(text: &str) -> Option<Frame> {
    if text == "2" {
        return None;
    }
    if let Some(data) = text.strip_prefix(r#"42["message:new","#) {
        return Some(
            match (
                number_after(data, r#""id":"#),
                number_after(data, r#""senderId":"#),
            ) {
                (Some(id), Some(sender)) => Frame::New {
                    id,
                    sender,
                    content: number_after(data, r#""content":""#).unwrap_or(-1),
                },
                _ => Frame::Error(format!("unreadable message:new {text}")),
            },
        );
    }
    if let Some(rest) = text.strip_prefix("43") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (ack, body) = rest.split_at(digits);
        if body.starts_with(r#"[{"error":"#) {
            return Some(Frame::Error(text.to_string()));
        }
        return Some(match (ack.parse::<u64>(), number_after(body, r#""id":"#)) {
            (Ok(ack), Some(id)) => Frame::Ack { ack, id },
            _ => Frame::Error(format!("unreadable ack {text}")),
        });
    }
    if text.starts_with(r#"42["error","#) || text.starts_with("41") {
        return Some(Frame::Error(text.to_string()));
    }
    Some(Frame::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socketio_frames_are_classified() {
        assert_eq!(classify("2"), None);
        assert_eq!(
            classify(r#"42["message:new",{"chatId":3,"content":"991","id":12,"senderId":7}]"#),
            Some(Frame::New {
                id: 12,
                sender: 7,
                content: 991
            })
        );
        assert_eq!(
            classify(r#"435[{"chatId":3,"clientId":"b5","id":12}]"#),
            Some(Frame::Ack { ack: 5, id: 12 })
        );
        assert!(matches!(
            classify(r#"437[{"error":{"code":"validation_error"}}]"#),
            Some(Frame::Error(_))
        ));
        assert_eq!(classify(r#"42["message:status",{}]"#), Some(Frame::Other));
        assert_eq!(
            send_frame(3, 10, 7),
            r#"427["message:send",{"chatId":3,"messageType":"TEXT","content":"10","clientId":"b7"}]"#
        );
    }
}
