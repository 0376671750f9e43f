//! Link previews: attaching a fetched preview to its message.

use crate::db::uploads::{self, NewUpload};
use crate::db::{events, messages, now_ms, previews as q, receipts, Db};
use crate::error::AppResult;
use crate::model::{LinkPreview, Message, MessageId, UserId};
use crate::realtime::frames::MESSAGE_UPDATED;

impl Db {
    /// Attaches `preview` to message `id`, with its thumbnail recorded as an
    /// upload of the message's sender (`upload`, whose `imageUrl` the
    /// preview already names), in one writer op with the `message:updated`
    /// events row. Nothing is written — `None` — when the message is gone,
    /// deleted, already has a preview, or was edited meanwhile to a
    /// different first link (`url` is the link the preview was fetched
    /// for). Returns the message and the members to tell.
    pub async fn fill_link_preview(
        &self,
        id: MessageId,
        url: String,
        mut preview: LinkPreview,
        upload: Option<NewUpload>,
    ) -> AppResult<Option<(Message, Vec<UserId>)>> {
        self.write(move |c| {
            let Some(target) = q::target(c, id)? else {
                return Ok(None);
            };
            let current = crate::previews::first_url(target.content.as_deref().unwrap_or_default());
            if target.is_deleted || target.has_preview || current.as_deref() != Some(url.as_str()) {
                return Ok(None);
            }
            let now = now_ms();
            let upload_id = match upload {
                Some(mut u) => {
                    u.uploader_id = target.sender_id;
                    Some(uploads::insert(c, &u, now)?)
                }
                None => {
                    preview.image_url = None;
                    None
                }
            };
            q::set(c, id, &preview, upload_id)?;
            events::append(c, target.chat_id, MESSAGE_UPDATED, Some(id), None, now)?;
            let positions = receipts::positions(c, target.chat_id)?;
            let members = super::messages::still_seeing(c, target.chat_id, id, &positions)?;
            let message = messages::load(c, id, &positions)?
                .ok_or_else(|| anyhow::anyhow!("message vanished"))?;
            Ok(Some((message, members)))
        })
        .await
    }
}
