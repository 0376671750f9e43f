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

/// One push to send: a subscription of a recipient, and what to say.
#[derive(Debug, Clone)]
pub struct Target {
    pub user: UserId,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    /// The recipient's unread messages in the chat (the notification's count).
    pub unread: i64,
}

/// The chat and sender as a notification names them.
#[derive(Debug, Clone)]
pub struct Names {
    pub chat_name: Option<String>,
    pub is_group: bool,
    pub sender_name: String,
}

impl Db {
    /// Subscriptions of `users` that may get a push for a message in
    /// `chat`: current members, not disabled, not muting the chat; with
    /// each one's unread count. Plus the chat's and the sender's names.
    pub async fn push_targets(
        &self,
        chat: crate::model::ChatId,
        sender: UserId,
        users: Vec<UserId>,
    ) -> AppResult<(Names, Vec<Target>)> {
        self.read(move |c| {
            let names = c.query_row(
                "SELECT c.name, c.is_group, u.name FROM chats c, users u
                  WHERE c.id = ?1 AND u.id = ?2",
                params![chat, sender],
                |r| {
                    Ok(Names {
                        chat_name: r.get(0)?,
                        is_group: r.get(1)?,
                        sender_name: r.get(2)?,
                    })
                },
            )?;
            // One query for every eligible subscription in the chat (few
            // rows: members who subscribed), not one per recipient.
            let away: std::collections::HashSet<UserId> = users.into_iter().collect();
            let subs: Vec<(UserId, String, String, String)> = c
                .prepare_cached(
                    "SELECT s.user_id, s.endpoint, s.p256dh, s.auth
                       FROM push_subscriptions s
                       JOIN chat_participants p ON p.user_id = s.user_id AND p.chat_id = ?1
                       JOIN users u ON u.id = s.user_id
                      WHERE p.left_at IS NULL AND u.disabled = 0
                        AND (p.muted_until IS NULL OR p.muted_until <= ?2)
                      ORDER BY s.user_id, s.id",
                )?
                .query_map(params![chat, now_ms()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut targets = Vec::new();
            let mut unread: Option<(UserId, i64)> = None;
            for (user, endpoint, p256dh, auth) in subs {
                if !away.contains(&user) {
                    continue;
                }
                let count = match unread {
                    Some((u, n)) if u == user => n,
                    _ => crate::db::messages::unread_count(c, chat, user)?,
                };
                unread = Some((user, count));
                targets.push(Target {
                    user,
                    endpoint,
                    p256dh,
                    auth,
                    unread: count,
                });
            }
            Ok((names, targets))
        })
        .await
    }

    /// Forgets a subscription the push service says is gone (404/410).
    pub async fn push_gone(&self, endpoint: String) -> AppResult<()> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = ?1",
                params![endpoint],
            )?;
            Ok(())
        })
        .await
    }
}
