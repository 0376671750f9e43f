//! Messages: send, history, edit, delete (for everyone and for me), receipts
//! of one message.

use crate::db::store::receipts::advance;
use crate::db::{chats, events, messages as q, now_ms, receipts, uploads, Conn, Db};
use crate::error::{AppError, AppResult};
use crate::model::{ChatId, Message, MessageId, Receipt, UserId};
use crate::ops::messages::{MessageType, SendMessage};
use crate::ops::receipts::StatusEvent;
use crate::realtime::frames::{MESSAGE_DELETED, MESSAGE_HIDDEN, MESSAGE_NEW, MESSAGE_UPDATED};

/// What a send stored (or found again, for a retried `clientId`).
pub struct Stored {
    pub message: Message,
    /// The chat's members, to publish to (empty when not created).
    pub members: Vec<UserId>,
    /// Whether this call created the message.
    pub created: bool,
    /// `message:status` events the sender's implicit read caused.
    pub receipts_changed: Vec<(UserId, StatusEvent)>,
}

/// A boxed future of a write's result.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// A page of history, and the caller's delivered position before it.
pub struct HistoryPage {
    pub items: Vec<Message>,
    /// More beyond the page in the direction of travel (older, for
    /// `Around`).
    pub has_more: bool,
    /// `Around` only: more newer than the page.
    pub has_more_after: Option<bool>,
    pub delivered: MessageId,
}

impl Db {
    /// Sends a message: membership, `clientId` de-duplication, reply and
    /// file checks, insert, chat activity, events row, the sender's read
    /// position; all in one writer op. `content` and `client_id` are the
    /// validated forms of the input's.
    pub async fn send_message(
        &self,
        caller: UserId,
        chat: ChatId,
        input: SendMessage,
        content: Option<String>,
        client_id: Option<String>,
    ) -> AppResult<Stored> {
        self.submit_message(caller, chat, input, content, client_id)
            .await?
            .await
    }

    /// [`Db::send_message`] in two steps: resolves once the send is queued
    /// in the writer, to the future of its result after COMMIT. Sends
    /// submitted one after another get ids in that order (a connection's
    /// pipelined sends).
    pub async fn submit_message(
        &self,
        caller: UserId,
        chat: ChatId,
        input: SendMessage,
        content: Option<String>,
        client_id: Option<String>,
    ) -> AppResult<BoxFuture<AppResult<Stored>>> {
        if let Some(queue) = &self.sends {
            let plain = matches!(input.kind(), MessageType::Text | MessageType::Link)
                && input.reply_to_id.is_none()
                && input.forwarded_from_id.is_none();
            if plain {
                let send = super::send_batch::Queued {
                    caller,
                    chat,
                    message_type: input.kind().as_str(),
                    content,
                    client_id,
                };
                let done = self.submit_combined(&queue.clone(), send).await?;
                return Ok(Box::pin(done));
            }
            // Written alone: later plain sends must not join a combined op
            // queued before this one.
            let slot = self.writer.slot().await?;
            queue.seal();
            let done =
                slot.submit(move |c| send_message(c, caller, chat, &input, content, client_id));
            return Ok(Box::pin(done));
        }
        let done = self
            .submit(move |c| send_message(c, caller, chat, &input, content, client_id))
            .await?;
        Ok(Box::pin(done))
    }

    /// A page of history for a member (404 otherwise).
    pub async fn history_page(
        &self,
        caller: UserId,
        chat: ChatId,
        at: q::PageAt,
        limit: u32,
    ) -> AppResult<HistoryPage> {
        self.read(move |c| {
            let viewer = q::viewer(c, chat, caller)?.ok_or_else(AppError::chat_not_found)?;
            let positions = receipts::positions(c, chat)?;
            let (items, has_more, has_more_after) = match at {
                q::PageAt::Around(target) => {
                    let page = q::page_around(c, chat, target, limit, &viewer, &positions)?;
                    (page.items, page.has_more_before, Some(page.has_more_after))
                }
                at => {
                    let (items, more) = q::page(c, chat, at, limit, &viewer, &positions)?;
                    (items, more, None)
                }
            };
            let delivered = positions
                .0
                .iter()
                .find(|p| p.user_id == caller)
                .map_or(MessageId(0), |p| p.delivered.max(p.read));
            Ok(HistoryPage {
                items,
                has_more,
                has_more_after,
                delivered,
            })
        })
        .await
    }

    /// 404 unless `message` is a message of `chat` and the caller a member.
    pub async fn check_message_access(
        &self,
        caller: UserId,
        chat: ChatId,
        message: MessageId,
    ) -> AppResult<()> {
        self.read(move |c| member_message(c, caller, chat, message).map(|_| ()))
            .await
    }

    /// Edits the caller's own message; returns it and the members to tell.
    pub async fn edit_message(
        &self,
        caller: UserId,
        chat: ChatId,
        message: MessageId,
        content: String,
    ) -> AppResult<(Message, Vec<UserId>)> {
        self.write(move |c| {
            let (_, sender, deleted) = member_message(c, caller, chat, message)?;
            if q::is_system(c, message)? {
                return Err(AppError::Forbidden("group notes cannot be edited".into()));
            }
            if sender != caller {
                return Err(AppError::Forbidden(
                    "only the sender can edit a message".into(),
                ));
            }
            if deleted {
                return Err(AppError::Conflict(
                    "a deleted message cannot be edited".into(),
                ));
            }
            let now = now_ms();
            // A new first link replaces the preview (fetched again after
            // the commit); the same link keeps it.
            let before = crate::db::previews::content_of(c, message)?;
            if crate::previews::first_url(before.as_deref().unwrap_or_default())
                != crate::previews::first_url(&content)
            {
                crate::db::previews::clear(c, message)?;
            }
            q::edit(c, message, &content, now)?;
            events::append(c, chat, MESSAGE_UPDATED, Some(message), None, now)?;
            let positions = receipts::positions(c, chat)?;
            let members = still_seeing(c, chat, message, &positions)?;
            let updated =
                q::load(c, message, &positions)?.ok_or_else(AppError::message_not_found)?;
            Ok((updated, members))
        })
        .await
    }

    /// Soft-deletes a message for everyone (its sender or a group admin,
    /// within `window` seconds when set); returns the tombstone and the
    /// members to tell (none when it was already deleted).
    pub async fn delete_message(
        &self,
        caller: UserId,
        chat: ChatId,
        message: MessageId,
        window: Option<u64>,
    ) -> AppResult<(Message, Vec<UserId>)> {
        self.write(move |c| {
            let (m, sender, deleted) = member_message(c, caller, chat, message)?;
            if q::is_system(c, message)? {
                return Err(AppError::Forbidden(
                    "group notes cannot be deleted for everyone (delete them for you)".into(),
                ));
            }
            if sender != caller && !(m.is_group && m.is_admin) {
                return Err(AppError::Forbidden(
                    "only the sender or a group admin can delete a message".into(),
                ));
            }
            let positions = receipts::positions(c, chat)?;
            if deleted {
                let msg =
                    q::load(c, message, &positions)?.ok_or_else(AppError::message_not_found)?;
                return Ok((msg, Vec::new()));
            }
            let now = now_ms();
            if let Some(window) = window {
                let sent = q::created_at(c, message)?.unwrap_or(now);
                if now.saturating_sub(sent)
                    > i64::try_from(window.saturating_mul(1000)).unwrap_or(i64::MAX)
                {
                    return Err(AppError::DeleteWindowPassed(window));
                }
            }
            q::soft_delete(c, message, now)?;
            events::append(c, chat, MESSAGE_DELETED, Some(message), None, now)?;
            let members = still_seeing(c, chat, message, &positions)?;
            let msg = q::load(c, message, &positions)?.ok_or_else(AppError::message_not_found)?;
            Ok((msg, members))
        })
        .await
    }

    /// Hides a message for the caller only; `false` when it already was.
    pub async fn hide_message(
        &self,
        caller: UserId,
        chat: ChatId,
        message: MessageId,
    ) -> AppResult<bool> {
        self.write(move |c| {
            member_message(c, caller, chat, message)?;
            if !q::hide(c, caller, chat, message)? {
                return Ok(false);
            }
            events::append(
                c,
                chat,
                MESSAGE_HIDDEN,
                Some(message),
                Some(caller),
                now_ms(),
            )?;
            Ok(true)
        })
        .await
    }

    /// Per-member receipts of a message of a chat the caller is in.
    pub async fn message_receipts(
        &self,
        caller: UserId,
        chat: ChatId,
        message: MessageId,
    ) -> AppResult<Vec<Receipt>> {
        self.read(move |c| {
            let (_, sender, _) = member_message(c, caller, chat, message)?;
            let positions = receipts::positions(c, chat)?;
            let mut items = receipts::for_message(c, chat, sender, message, &positions)?;
            let plays = crate::db::voice::plays(c, message)?;
            for r in &mut items {
                r.played_at = plays.get(&r.user_id).copied().map(crate::model::rfc3339);
            }
            Ok(items)
        })
        .await
    }
}

fn send_message(
    c: &Conn,
    caller: UserId,
    chat: ChatId,
    input: &SendMessage,
    content: Option<String>,
    client_id: Option<String>,
) -> AppResult<Stored> {
    // Membership, a retried clientId, whether the caller has unread
    // messages (writing in a chat reads it) and the positions: one round trip.
    let (check, positions) = q::send_check(c, chat, caller, client_id.as_deref())?;
    let q::SendCheck { existing, unread } = check.ok_or_else(AppError::chat_not_found)?;
    if let Some(existing) = existing {
        let message =
            q::load(c, existing, &positions)?.ok_or_else(|| anyhow::anyhow!("message vanished"))?;
        return Ok(Stored {
            message,
            members: Vec::new(),
            created: false,
            receipts_changed: Vec::new(),
        });
    }
    if let Some(reply) = input.reply_to_id {
        match q::owner(c, reply)? {
            Some((reply_chat, _, _)) if reply_chat == chat => {}
            _ => {
                return Err(AppError::invalid(
                    "replyToId",
                    "replyToId must be a message of this chat",
                ))
            }
        }
    }
    if let Some(from) = input.forwarded_from_id {
        return forward(c, caller, chat, input, from, client_id, positions, unread);
    }
    let file = match input.kind() {
        MessageType::Image | MessageType::File => {
            let file = own_upload(
                c,
                caller,
                input.file_url.as_deref().unwrap_or_default(),
                "fileUrl",
            )?;
            if input.kind() == MessageType::Image && !file.is_image() {
                return Err(AppError::invalid(
                    "messageType",
                    "IMAGE messages need an image file",
                ));
            }
            if input.duration_ms.is_some() && !file.row.mime_type.starts_with("audio/") {
                return Err(AppError::invalid(
                    "fileUrl",
                    "a voice message's fileUrl must be an audio recording (by its bytes)",
                ));
            }
            Some(file)
        }
        _ => None,
    };
    let now = now_ms();
    let message = q::insert_sent(
        c,
        &q::NewMessage {
            chat_id: chat,
            sender_id: caller,
            message_type: input.kind().as_str(),
            is_forwarded: false,
            content: content.as_deref(),
            upload_id: file.as_ref().map(|f| f.id),
            file_url: file.as_ref().map(|f| f.url.as_str()),
            file_name: file.as_ref().map(|f| f.row.file_name.as_str()),
            file_size: file.as_ref().map(|f| f.row.file_size),
            file_mime_type: file.as_ref().map(|f| f.row.mime_type.as_str()),
            reply_to_id: input.reply_to_id,
            client_id: client_id.as_deref(),
            system: None,
            now,
        },
        MESSAGE_NEW,
    )?;
    let id = message.id;
    let mut message = message;
    if let (Some(duration), Some(waveform)) = (input.duration_ms, input.waveform.as_deref()) {
        crate::db::voice::set_voice(c, id, duration, waveform)?;
        message.duration_ms = Some(duration);
        message.waveform = Some(waveform.to_string());
    }
    finish(c, caller, chat, message, positions, unread, now)
}

/// The end of a send: the sender's implicit read, status and members.
fn finish(
    c: &Conn,
    caller: UserId,
    chat: ChatId,
    message: Message,
    positions: receipts::Positions,
    unread: bool,
    now: i64,
) -> AppResult<Stored> {
    let id = message.id;
    // Whoever writes in a chat has read it (as in WhatsApp): their
    // unread count drops to zero and earlier messages turn READ. Only
    // when something from others is unread: the sender's position
    // over their own messages is never observable, and skipping it
    // spares the writer four row writes per message.
    let (receipts_changed, positions) = if unread {
        advance(c, chat, caller, receipts::Kind::Read, id, now, positions)?
    } else {
        (Vec::new(), positions)
    };
    let members = positions.0.iter().map(|p| p.user_id).collect();
    let message = q::with_status(message, &positions);
    Ok(Stored {
        message,
        members,
        created: true,
        receipts_changed,
    })
}

/// A forward of message `from` into `chat`: `from` must be a message the
/// caller sees in one of their chats (else 404, as for an unknown id) and
/// not deleted (409). The copy has its type, content, file (the same
/// upload row: no second file on disk, and the members of `chat` may now
/// fetch it) and voice fields, and `isForwarded`.
#[allow(clippy::too_many_arguments)]
fn forward(
    c: &Conn,
    caller: UserId,
    chat: ChatId,
    input: &SendMessage,
    from: MessageId,
    client_id: Option<String>,
    positions: receipts::Positions,
    unread: bool,
) -> AppResult<Stored> {
    let (from_chat, _, _) = q::owner(c, from)?.ok_or_else(AppError::message_not_found)?;
    let viewer = q::viewer(c, from_chat, caller)?.ok_or_else(AppError::message_not_found)?;
    let deleted = crate::db::reactions::visible_to(c, from_chat, from, &viewer)?
        .ok_or_else(AppError::message_not_found)?;
    if q::is_system(c, from)? {
        return Err(AppError::invalid(
            "forwardedFromId",
            "group notes cannot be forwarded",
        ));
    }
    if deleted {
        return Err(AppError::Conflict(
            "a deleted message cannot be forwarded".into(),
        ));
    }
    // `replyToId` was checked by the caller, `send_message`, for every send.
    let source = q::load_row(c, from)?.ok_or_else(AppError::message_not_found)?;
    let upload = q::upload_of(c, from)?;
    let now = now_ms();
    let mut message = q::insert_sent(
        c,
        &q::NewMessage {
            chat_id: chat,
            sender_id: caller,
            message_type: &source.message_type,
            is_forwarded: true,
            content: source.content.as_deref(),
            upload_id: upload,
            file_url: source.file_url.as_deref(),
            file_name: source.file_name.as_deref(),
            file_size: source.file_size,
            file_mime_type: source.file_mime_type.as_deref(),
            reply_to_id: input.reply_to_id,
            client_id: client_id.as_deref(),
            system: None,
            now,
        },
        MESSAGE_NEW,
    )?;
    if let (Some(duration), Some(waveform)) = (source.duration_ms, source.waveform.as_deref()) {
        crate::db::voice::set_voice(c, message.id, duration, waveform)?;
        message.duration_ms = Some(duration);
        message.waveform = Some(waveform.to_string());
    }
    finish(c, caller, chat, message, positions, unread, now)
}

/// One of the caller's uploads, found by its URL.
pub(crate) struct OwnUpload {
    pub id: i64,
    /// The canonical `/uploads/chat/<name>`.
    pub url: String,
    pub row: uploads::UploadRow,
}

impl OwnUpload {
    /// Whether the upload is an image (`image/*`).
    pub fn is_image(&self) -> bool {
        self.row.mime_type.starts_with("image/")
    }
}

/// The caller's own upload behind `url`, else 400 naming `field`.
pub(crate) fn own_upload(c: &Conn, caller: UserId, url: &str, field: &str) -> AppResult<OwnUpload> {
    let name = url
        .trim()
        .strip_prefix(q::UPLOADS_PREFIX)
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| {
            AppError::invalid(
                field,
                format!("{field} must be a URL returned by /chat/upload"),
            )
        })?;
    let row = uploads::find_by_name(c, name)?
        .filter(|r| r.uploader_id == caller)
        .ok_or_else(|| {
            AppError::invalid(field, format!("{field} must be one of your own uploads"))
        })?;
    Ok(OwnUpload {
        id: row.id,
        url: format!("{}{}", q::UPLOADS_PREFIX, row.name),
        row,
    })
}

/// Loads a message of a chat the caller is in, or 404.
fn member_message(
    c: &Conn,
    caller: UserId,
    chat: ChatId,
    message: MessageId,
) -> AppResult<(chats::Membership, UserId, bool)> {
    let m = chats::membership(c, chat, caller)?.ok_or_else(AppError::message_not_found)?;
    match q::owner(c, message)? {
        Some((msg_chat, sender, deleted)) if msg_chat == chat => Ok((m, sender, deleted)),
        _ => Err(AppError::message_not_found()),
    }
}

/// The members a change to `message` is pushed to: those for whom it is not
/// gone (deleted for them, or cleared).
pub(crate) fn still_seeing(
    c: &Conn,
    chat: ChatId,
    message: MessageId,
    positions: &receipts::Positions,
) -> AppResult<Vec<UserId>> {
    let gone = q::hidden_from(c, chat, message)?;
    Ok(positions
        .0
        .iter()
        .map(|p| p.user_id)
        .filter(|u| !gone.contains(u))
        .collect())
}
