//! Accounts: create, credentials, profiles, search, presence, and the
//! administrator's changes (REST and `natter user ...`).

use crate::db::store::messages::own_upload;
use crate::db::{chats, now_ms, uploads, users as q, Conn, Db};
use crate::error::{AppError, AppResult};
use crate::model::{User, UserId};

/// A new account, validated and with its password hashed.
pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
}

impl Db {
    /// A generated key shared by every node on this database (the JWT
    /// secret on PostgreSQL): the stored value of `key`, or `candidate`
    /// stored now if there is none (the first node to start decides).
    pub async fn shared_secret(&self, key: &'static str, candidate: String) -> AppResult<String> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO natter_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                crate::db::sql::params![key, candidate],
            )?;
            Ok(c.query_row(
                "SELECT value FROM natter_meta WHERE key = ?1",
                crate::db::sql::params![key],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await
    }

    /// Stores a new account; returns its id.
    pub async fn create_user(&self, new: NewAccount) -> AppResult<UserId> {
        self.write(move |c| {
            q::insert_user(
                c,
                &q::NewUser {
                    email: &new.email,
                    name: &new.name,
                    password_hash: &new.password_hash,
                    is_admin: new.is_admin,
                    now: now_ms(),
                },
            )
        })
        .await
    }

    /// Login data of the account with this (normalised) email.
    pub async fn credentials_by_email(&self, email: String) -> AppResult<Option<q::Credentials>> {
        self.read(move |c| q::credentials_by_email(c, &email)).await
    }

    /// Token data of the account `id`.
    pub async fn credentials_by_id(&self, id: UserId) -> AppResult<Option<q::Credentials>> {
        self.read(move |c| q::credentials_by_id(c, id)).await
    }

    /// A user by id.
    pub async fn find_user(&self, id: UserId) -> AppResult<Option<User>> {
        self.read(move |c| q::find_user(c, id)).await
    }

    /// Changes a profile; a new avatar URL must be one of the user's own
    /// image uploads (400 `avatarUrl` otherwise).
    pub async fn update_profile(&self, id: UserId, mut change: q::ProfileChange) -> AppResult<()> {
        self.write(move |c| {
            if let Some(Some(url)) = &change.avatar_url {
                let url = avatar_upload(c, id, url, "avatarUrl")?;
                change.avatar_url = Some(Some(url));
            }
            q::update_profile(c, id, &change)
        })
        .await
    }

    /// Users matching `q` (normalised), the caller excluded.
    pub async fn search_users(
        &self,
        caller: UserId,
        q: String,
        limit: u32,
    ) -> AppResult<Vec<User>> {
        self.read(move |c| q::search(c, caller, &q, limit)).await
    }

    /// Records when `user` was last online.
    pub async fn set_last_seen(&self, user: UserId, at: i64) -> AppResult<()> {
        self.write(move |c| q::set_last_seen(c, user, at)).await
    }

    /// Who shares a chat with `user`, and `user`'s stored `lastSeen`.
    pub async fn presence_peers(&self, user: UserId) -> AppResult<(Vec<UserId>, Option<String>)> {
        self.read(move |c| {
            let peers = chats::co_members(c, user)?;
            let last_seen = q::find_user(c, user)?.and_then(|u| u.last_seen);
            Ok((peers, last_seen))
        })
        .await
    }

    /// Users revoked after `after` (ms): `(id, revoked_at)`.
    pub async fn revoked_since(&self, after: i64) -> AppResult<Vec<(UserId, i64)>> {
        self.read(move |c| q::revoked_since(c, after)).await
    }

    /// Whether `id` is a server administrator.
    pub async fn is_server_admin(&self, id: UserId) -> AppResult<bool> {
        self.read(move |c| q::is_server_admin(c, id)).await
    }

    /// Every account, oldest first.
    pub async fn list_users(&self) -> AppResult<Vec<q::AdminRow>> {
        self.read(q::list_all).await
    }

    /// An administrator's change to account `target` (404 if none);
    /// disabling revokes its tokens.
    pub async fn admin_update_user(
        &self,
        target: UserId,
        disabled: Option<bool>,
        is_admin: Option<bool>,
    ) -> AppResult<()> {
        self.write(move |c| {
            q::find_user(c, target)?.ok_or_else(|| AppError::NotFound("user not found".into()))?;
            if let Some(disabled) = disabled {
                q::set_disabled(c, target, disabled, now_ms())?;
            }
            if let Some(admin) = is_admin {
                q::set_server_admin(c, target, admin)?;
            }
            Ok(())
        })
        .await
    }

    /// Sets the password hash of the account with this email and revokes
    /// its tokens (404 if none).
    pub async fn reset_password(&self, email: String, password_hash: String) -> AppResult<()> {
        self.write(move |c| {
            let id = q::id_by_email(c, &email)?;
            let change = q::ProfileChange {
                password_hash: Some(password_hash),
                ..Default::default()
            };
            q::update_profile(c, id, &change)?;
            q::revoke(c, id, now_ms())
        })
        .await
    }

    /// Disables (revoking its tokens) or enables the account with this
    /// email (404 if none).
    pub async fn set_disabled_by_email(&self, email: String, disabled: bool) -> AppResult<()> {
        self.write(move |c| {
            let id = q::id_by_email(c, &email)?;
            q::set_disabled(c, id, disabled, now_ms())
        })
        .await
    }

    /// Grants or revokes the server administrator role of the account with
    /// this email (404 if none).
    pub async fn set_server_admin_by_email(&self, email: String, admin: bool) -> AppResult<()> {
        self.write(move |c| {
            let id = q::id_by_email(c, &email)?;
            q::set_server_admin(c, id, admin)
        })
        .await
    }
}

/// Makes the caller's own image upload behind `url` an avatar (a user's
/// `avatarUrl` or a group's `groupAvatar`): from now on every signed-in user
/// may read it, and the sweep of unsent uploads keeps it. Returns its
/// canonical URL; 400 naming `field` for anything else. Runs in a writer op.
pub(crate) fn avatar_upload(c: &Conn, caller: UserId, url: &str, field: &str) -> AppResult<String> {
    let upload = own_upload(c, caller, url, field)?;
    if !upload.is_image() {
        return Err(AppError::invalid(
            field,
            format!("{field} must be an image"),
        ));
    }
    uploads::mark_avatar(c, upload.id)?;
    Ok(upload.url)
}
