//! SQL for users.

use crate::db::sql::{params, Conn, DbError, OptionalExtension, Row};

use crate::error::{AppError, AppResult};
use crate::model::{rfc3339, User, UserId};

/// Columns that [`user_from_row`] reads, in order.
pub const USER_COLUMNS: &str = "u.id, u.email, u.name, u.avatar_url, u.last_seen, u.created_at";

/// Builds a [`User`] (offline; presence is filled in later) from `USER_COLUMNS`
/// starting at column `at`.
pub fn user_from_row(row: &Row<'_>, at: usize) -> crate::db::sql::DbResult<User> {
    Ok(User {
        id: row.get(at)?,
        email: row.get(at + 1)?,
        name: row.get(at + 2)?,
        avatar_url: row.get(at + 3)?,
        online: false,
        last_seen: row.get::<_, Option<i64>>(at + 4)?.map(rfc3339),
        created_at: rfc3339(row.get(at + 5)?),
    })
}

/// What login and token checks need.
#[derive(Debug)]
pub struct Credentials {
    pub id: UserId,
    pub password_hash: String,
    pub disabled: bool,
    pub token_version: i64,
}

/// A new account.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
    pub now: i64,
}

/// Inserts a user; 409 when the email is taken (case-insensitively).
pub fn insert_user(conn: &Conn, new: &NewUser<'_>) -> AppResult<UserId> {
    let result = conn
        .prepare_cached(
            "INSERT INTO users (email, email_norm, name, password_hash, is_admin, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?
        .query_row(
            params![
                new.email,
                new.email.to_lowercase(),
                new.name,
                new.password_hash,
                new.is_admin,
                new.now
            ],
            |r| r.get(0),
        );
    match result {
        Ok(id) => Ok(id),
        Err(DbError::Constraint(_)) => {
            Err(AppError::Conflict("email is already registered".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A user by id.
pub fn find_user(conn: &Conn, id: UserId) -> AppResult<Option<User>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"
        ))?
        .query_row([id], |r| user_from_row(r, 0))
        .optional()?)
}

/// Credentials by email (case-insensitive).
pub fn credentials_by_email(conn: &Conn, email: &str) -> AppResult<Option<Credentials>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, password_hash, disabled, token_version FROM users WHERE email_norm = ?1",
        )?
        .query_row([email.to_lowercase()], credentials_from_row)
        .optional()?)
}

/// Credentials by id.
pub fn credentials_by_id(conn: &Conn, id: UserId) -> AppResult<Option<Credentials>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, password_hash, disabled, token_version FROM users WHERE id = ?1",
        )?
        .query_row([id], credentials_from_row)
        .optional()?)
}

fn credentials_from_row(r: &Row<'_>) -> crate::db::sql::DbResult<Credentials> {
    Ok(Credentials {
        id: r.get(0)?,
        password_hash: r.get(1)?,
        disabled: r.get(2)?,
        token_version: r.get(3)?,
    })
}

/// Changes to the caller's own profile.
#[derive(Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub password_hash: Option<String>,
}

/// Applies a profile change.
pub fn update_profile(conn: &Conn, id: UserId, change: &ProfileChange) -> AppResult<()> {
    if let Some(name) = &change.name {
        conn.prepare_cached("UPDATE users SET name = ?2 WHERE id = ?1")?
            .execute(params![id, name])?;
    }
    if let Some(avatar) = &change.avatar_url {
        conn.prepare_cached("UPDATE users SET avatar_url = ?2 WHERE id = ?1")?
            .execute(params![id, avatar])?;
    }
    if let Some(hash) = &change.password_hash {
        conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
            .execute(params![id, hash])?;
    }
    Ok(())
}

/// Users whose name or email contains `q` (case-insensitive), except
/// `caller`; an email is only shown to people who share a chat with its
/// owner or who typed it exactly (the way WhatsApp shows numbers only to
/// contacts): other results carry it masked (`a•••@example.com`).
pub fn search(conn: &Conn, caller: UserId, q: &str, limit: u32) -> AppResult<Vec<User>> {
    let pattern = format!(
        "%{}%",
        q.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS},
                u.email_norm = ?4 OR EXISTS (
                    SELECT 1 FROM chat_participants a
                    JOIN chat_participants b ON b.chat_id = a.chat_id AND b.user_id = u.id
                    WHERE a.user_id = ?1 AND a.left_at IS NULL AND b.left_at IS NULL)
         FROM users u
         WHERE u.id != ?1 AND u.disabled = 0
           AND (lower(u.name) LIKE ?2 ESCAPE '\\' OR u.email_norm LIKE ?2 ESCAPE '\\')
         ORDER BY lower(u.name), u.id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![caller, pattern, limit, q.to_lowercase()], |r| {
        let mut user = user_from_row(r, 0)?;
        if !r.get::<_, bool>(6)? {
            user.email = mask_email(&user.email);
        }
        Ok(user)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `ana@example.com` → `a•••@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_string(),
    }
}

/// Records when a user was last online.
pub fn set_last_seen(conn: &Conn, id: UserId, at: i64) -> AppResult<()> {
    conn.prepare_cached("UPDATE users SET last_seen = ?2 WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

/// Ids of existing, enabled users among `ids`.
pub fn existing_ids(conn: &Conn, ids: &[UserId]) -> AppResult<Vec<UserId>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM users WHERE id = ?1 AND disabled = 0")?;
    let mut found = Vec::with_capacity(ids.len());
    for &id in ids {
        if stmt.exists([id])? {
            found.push(id);
        }
    }
    Ok(found)
}

/// A row of `natter user list`.
#[derive(Debug)]
pub struct AdminRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

/// Every user, oldest first.
pub fn list_all(conn: &Conn) -> AppResult<Vec<AdminRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, email, name, is_admin, disabled, created_at FROM users ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(AdminRow {
            id: r.get(0)?,
            email: r.get(1)?,
            name: r.get(2)?,
            is_admin: r.get(3)?,
            disabled: r.get(4)?,
            created_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The id of the user with this email (case-insensitive), or 404.
pub fn id_by_email(conn: &Conn, email: &str) -> AppResult<UserId> {
    conn.prepare_cached("SELECT id FROM users WHERE email_norm = ?1")?
        .query_row([email.trim().to_lowercase()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no user with email {email}")))
}

/// Revokes every token of a user (and tells a running server to close the
/// user's sockets, through `revoked_at`).
pub fn revoke(conn: &Conn, id: UserId, now: i64) -> AppResult<()> {
    conn.prepare_cached(
        "UPDATE users SET token_version = token_version + 1, revoked_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Enables or disables an account; disabling revokes its tokens.
pub fn set_disabled(conn: &Conn, id: UserId, disabled: bool, now: i64) -> AppResult<()> {
    conn.prepare_cached("UPDATE users SET disabled = ?2 WHERE id = ?1")?
        .execute(params![id, disabled])?;
    if disabled {
        revoke(conn, id, now)?;
    }
    Ok(())
}

/// Grants or revokes the server administrator role.
pub fn set_server_admin(conn: &Conn, id: UserId, admin: bool) -> AppResult<()> {
    conn.prepare_cached("UPDATE users SET is_admin = ?2 WHERE id = ?1")?
        .execute(params![id, admin])?;
    Ok(())
}

/// Users revoked after `after` (ms): `(id, revoked_at)`.
pub fn revoked_since(conn: &Conn, after: i64) -> AppResult<Vec<(UserId, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, revoked_at FROM users WHERE revoked_at > ?1 ORDER BY revoked_at",
    )?;
    let rows = stmt.query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether a user holds the server administrator role (and is enabled).
pub fn is_server_admin(conn: &Conn, id: UserId) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1 AND is_admin = 1 AND disabled = 0")?
        .exists([id])?)
}
