//! Uploads: serving checks, the per-user quota, recording, retention.

use crate::db::uploads::{self as q, NewUpload};
use crate::db::{now_ms, Db};
use crate::error::AppResult;
use crate::model::UserId;

impl Db {
    /// The upload (or preview, then `true`) stored as `name`, and whether
    /// `user` may read it; `None` if there is none.
    pub async fn upload_for_reader(
        &self,
        name: String,
        user: UserId,
    ) -> AppResult<Option<(q::UploadRow, bool, bool)>> {
        self.read(move |c| {
            let Some((row, is_thumb)) = q::find_by_any_name(c, &name)? else {
                return Ok(None);
            };
            let allowed = q::can_read(c, row.id, row.uploader_id, user)?;
            Ok(Some((row, is_thumb, allowed)))
        })
        .await
    }

    /// Bytes of `user`'s uploads not sent in any message (nor avatars).
    pub async fn unsent_upload_bytes(&self, user: UserId) -> AppResult<i64> {
        self.read(move |c| q::unsent_bytes(c, user)).await
    }

    /// Records an upload unless it would take its uploader's unsent bytes
    /// past `quota` (when non-zero): `false` then, and nothing is written.
    /// The writer, one upload at a time, decides for good.
    pub async fn record_upload(&self, u: NewUpload, quota: u64) -> AppResult<bool> {
        self.write(move |c| {
            if quota > 0
                && q::unsent_bytes(c, u.uploader_id)?.saturating_add(u.file_size) > quota as i64
            {
                return Ok(false);
            }
            q::insert(c, &u, now_ms())?;
            Ok(true)
        })
        .await
    }

    /// Retention: deletes messages created before `cutoff` and unsent
    /// uploads created before `orphan_before`; returns the number of
    /// messages deleted and the stored file names to remove from disk.
    pub async fn sweep(
        &self,
        cutoff: Option<i64>,
        orphan_before: i64,
    ) -> AppResult<(usize, Vec<String>)> {
        self.write(move |c| q::sweep(c, cutoff, orphan_before))
            .await
    }
}
