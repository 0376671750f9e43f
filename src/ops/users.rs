//! Accounts, profiles, user search and presence.

use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use utoipa::ToSchema;

use crate::auth;
use crate::db::store::users::NewAccount;
use crate::db::{self, now_ms};
use crate::error::{AppError, AppResult};
use crate::model::{rfc3339, User, UserId};
use crate::ops::{fill_user, valid_name, valid_url};
use crate::realtime::frames::USER_ONLINE;
use crate::realtime::hub::Transition;
use crate::state::AppState;

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in characters (caps the hashing work per request).
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest email.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Most results of a user search.
pub const SEARCH_LIMIT: u32 = 20;

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Register {
    #[schema(max_length = 254, example = "ada@example.com")]
    pub email: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    pub email: String,
    #[schema(max_length = 1024)]
    pub password: String,
}

/// `PATCH /auth/me`: absent fields stay as they are; `avatarUrl: null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMe {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// One of the caller's own image uploads (a `fileUrl` from
    /// `/chat/upload`), which becomes readable by every signed-in user;
    /// `null` clears the avatar.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub avatar_url: Option<Option<String>>,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

/// Distinguishes an absent field (None) from `null` (Some(None)).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A token and the user it is for.
pub struct Session {
    pub token: String,
    pub user: User,
}

fn valid_email(email: &str) -> AppResult<String> {
    let email = normalize_email(email);
    let ok = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !ok {
        return Err(AppError::invalid("email", "email must be a valid address"));
    }
    if email
        .chars()
        .any(|c| super::is_invisible_or_bidi(c) || matches!(c, '\u{200C}' | '\u{200D}'))
    {
        return Err(AppError::invalid(
            "email",
            "email must not contain invisible or text-direction characters",
        ));
    }
    if email.split(['@', '.']).any(mixes_scripts) {
        return Err(AppError::invalid(
            "email",
            "email must not mix Latin, Greek or Cyrillic letters in one part (look-alikes)",
        ));
    }
    Ok(email)
}

/// An email as natter stores and compares it: trimmed and in Unicode NFKC
/// form, so fullwidth `ａｎａ@…` and `ana@…` are one address.
pub fn normalize_email(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    raw.trim().nfkc().collect()
}

/// Whether `part` has letters of more than one of the scripts whose letters
/// look alike (Latin `a`, Cyrillic `а`, Greek `α`).
fn mixes_scripts(part: &str) -> bool {
    #[derive(PartialEq, Clone, Copy)]
    enum Script {
        Latin,
        Greek,
        Cyrillic,
    }
    let script = |c: char| match c as u32 {
        0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF => Some(Script::Latin),
        0x370..=0x3FF | 0x1F00..=0x1FFF => Some(Script::Greek),
        0x400..=0x52F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => {
            Some(Script::Cyrillic)
        }
        _ => None,
    };
    let mut seen = None;
    for s in part.chars().filter_map(script) {
        match seen {
            None => seen = Some(s),
            Some(first) if first != s => return true,
            _ => {}
        }
    }
    false
}

/// Checks the length rule of passwords.
pub fn valid_password(password: &str) -> AppResult<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Creates an account (also used by `natter user add`).
pub async fn create_account(
    state: &AppState,
    email: &str,
    password: &str,
    name: &str,
    is_admin: bool,
) -> AppResult<User> {
    let email = valid_email(email)?;
    valid_password(password)?;
    let name = valid_name("name", name)?;
    let hash = auth::hash_password(state.limits().hashing(), password.to_string()).await?;
    let id = state
        .db()
        .create_user(NewAccount {
            email,
            name,
            password_hash: hash,
            is_admin,
        })
        .await?;
    me(state, id).await
}

/// Registers and logs in.
#[instrument(skip_all)]
pub async fn register(state: &AppState, input: Register) -> AppResult<Session> {
    if !state.config().registration_open {
        return Err(AppError::Forbidden(
            "registration is closed on this server".into(),
        ));
    }
    let user = create_account(state, &input.email, &input.password, &input.name, false).await?;
    let token = auth::issue_token(
        &state.config().jwt_secret,
        user.id,
        0,
        state.config().token_ttl_secs,
    )?;
    Ok(Session { token, user })
}

/// Logs in; one message for an unknown email and a wrong password.
#[instrument(skip_all)]
pub async fn login(state: &AppState, input: Login) -> AppResult<Session> {
    let bad = || AppError::Unauthorized("invalid email or password".into());
    if input.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let email = normalize_email(&input.email);
    let creds = state.db().credentials_by_email(email).await?;
    let hash = creds.as_ref().map(|c| c.password_hash.clone());
    if !auth::verify_password(state.limits().hashing(), input.password, hash).await? {
        return Err(bad());
    }
    let creds = creds.ok_or_else(bad)?;
    if creds.disabled {
        return Err(AppError::Forbidden("this account is disabled".into()));
    }
    let token = auth::issue_token(
        &state.config().jwt_secret,
        creds.id,
        creds.token_version,
        state.config().token_ttl_secs,
    )?;
    let user = me(state, creds.id).await?;
    Ok(Session { token, user })
}

/// The caller's user.
pub async fn me(state: &AppState, id: UserId) -> AppResult<User> {
    let mut user = state
        .db()
        .find_user(id)
        .await?
        .ok_or_else(|| AppError::NotFound("user not found".into()))?;
    fill_user(state, &mut user);
    Ok(user)
}

/// Changes the caller's name, avatar or password.
pub async fn update_me(state: &AppState, id: UserId, input: UpdateMe) -> AppResult<User> {
    let mut change = db::users::ProfileChange::default();
    if let Some(name) = &input.name {
        change.name = Some(valid_name("name", name)?);
    }
    if let Some(avatar) = &input.avatar_url {
        change.avatar_url = Some(valid_url("avatarUrl", avatar.as_deref())?);
    }
    if let Some(password) = input.password {
        valid_password(&password)?;
        change.password_hash = Some(auth::hash_password(state.limits().hashing(), password).await?);
    }
    state.db().update_profile(id, change).await?;
    me(state, id).await
}

/// Users matching `q`, the caller excluded.
pub async fn search(state: &AppState, caller: UserId, q: &str) -> AppResult<Vec<User>> {
    let q = normalize_email(q);
    if q.chars().count() > 100 {
        return Err(AppError::invalid("q", "q must be at most 100 characters"));
    }
    let mut users = state.db().search_users(caller, q, SEARCH_LIMIT).await?;
    for u in &mut users {
        fill_user(state, u);
    }
    Ok(users)
}

/// `POST /chat/status`: presence by hand.
pub async fn set_status(state: &AppState, caller: UserId, online: bool) -> AppResult<User> {
    if let Some(t) = state.bus().set_manual(state.hub(), caller, online) {
        announce_presence(state, t).await?;
    }
    me(state, caller).await
}

/// Records `lastSeen` on going offline and tells users who share a chat,
/// on this node's sockets: with several nodes every node derives the
/// transitions from its own view of the cluster and tells its own sockets
/// (`realtime::bus`), so each socket hears a change once and no node's
/// silence can swallow one.
pub async fn announce_presence(state: &AppState, t: Transition) -> AppResult<()> {
    let now = now_ms();
    if !t.online {
        state.db().set_last_seen(t.user, now).await?;
    }
    if state.hub().connection_count() == 0 {
        return Ok(());
    }
    let user = t.user;
    let (peers, last_seen) = state.db().presence_peers(user).await?;
    let last_seen = if t.online {
        last_seen
    } else {
        Some(rfc3339(now))
    };
    let data = json!({"userId": t.user, "online": t.online, "lastSeen": last_seen});
    let event = std::sync::Arc::new(crate::realtime::frames::Published::new(USER_ONLINE, &data));
    state.hub().publish(&event, &peers);
    Ok(())
}

/// Closes the sockets of users an administrator disabled or reset (from
/// another process: `natter user ...`), polling the database every second.
pub fn start_revocation_watch(state: crate::state::WeakState) {
    tokio::spawn(async move {
        let mut since = now_ms();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { break };
            let after = since;
            match state.db().revoked_since(after).await {
                Ok(rows) => {
                    for (user, at) in rows {
                        state.hub().close_user(user);
                        since = since.max(at);
                    }
                }
                Err(e) => e.log(),
            }
        }
    });
}
