//! Web Push subscriptions: one row per browser or device, tied to its user.

use crate::db::sql::params;
use crate::db::{now_ms, Db};
use crate::error::AppResult;
use crate::model::UserId;

/// Subscriptions a user may hold; a new one past it replaces their oldest.
pub const MAX_PER_USER: i64 = 20;

/// A validated subscription.
pub struct NewSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

impl Db {
    /// Stores `sub` for `user`. The same endpoint again replaces the old
    /// row (also one another account of that browser held): `false` then,
    /// `true` when it is new. Past [`MAX_PER_USER`] the user's oldest goes.
    pub async fn push_subscribe(&self, user: UserId, sub: NewSubscription) -> AppResult<bool> {
        self.write(move |c| {
            let replaced = c.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = ?1",
                params![sub.endpoint],
            )? > 0;
            c.execute(
                "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user, sub.endpoint, sub.p256dh, sub.auth, now_ms()],
            )?;
            c.execute(
                "DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN (
                     SELECT id FROM push_subscriptions WHERE user_id = ?1
                      ORDER BY id DESC LIMIT ?2)",
                params![user, MAX_PER_USER],
            )?;
            Ok(!replaced)
        })
        .await
    }

    /// Removes `user`'s subscription at `endpoint` (nothing if there is none).
    pub async fn push_unsubscribe(&self, user: UserId, endpoint: String) -> AppResult<()> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint = ?2",
                params![user, endpoint],
            )?;
            Ok(())
        })
        .await
    }

    /// How many subscriptions `user` holds.
    pub async fn push_subscription_count(&self, user: UserId) -> AppResult<i64> {
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM push_subscriptions WHERE user_id = ?1",
                params![user],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
    }
}
