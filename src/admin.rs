//! Administration commands of the same binary: `natter user ...`,
//! `natter backup <file>` and `natter restore <file>`.
//!
//! User commands and backups work against the data dir while the server
//! runs: they go through the same validation (`ops`) and SQLite's locking, and
//! a running server notices revocations (disable, reset-password) within
//! seconds and closes the user's sockets. Restore needs the server stopped,
//! which the data dir's lock file tells.

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rusqlite::{Connection, OpenFlags};

use crate::config::{Config, ServeArgs};
use crate::db::{self, now_ms};
use crate::model::rfc3339;
use crate::state::AppState;

/// Name of the lock file a running server holds in its data dir.
pub const LOCK_FILE: &str = "natter.lock";

/// Takes the data dir's lock: one server per data dir, and restore only while
/// none runs. The lock lasts as long as the returned file is open.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(LOCK_FILE);
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another natter is running on {} (stop it first)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("cannot lock the data dir"),
    }
}

/// Opens an existing data dir for an admin command. Only `serve` creates
/// one (a typo in `--data-dir` must not make a new, empty one), and only
/// `serve` migrates a schema: a database of another version is refused.
async fn open(data_dir: &Path) -> anyhow::Result<AppState> {
    let db_path = data_dir.join("natter.db");
    if !db_path.is_file() {
        bail!(
            "no natter database at {} — is the path right? (serve creates it on first start)",
            data_dir.display()
        );
    }
    let probe = db_path.clone();
    let version = tokio::task::spawn_blocking(move || schema_version(&probe)).await??;
    if version != db::migrate::CURRENT_VERSION {
        let which = if version < db::migrate::CURRENT_VERSION {
            "older"
        } else {
            "newer"
        };
        bail!(
            "the database at {} has schema {version}, {which} than this natter's {}: \
             admin commands never migrate it; run the matching natter, or start this one's \
             `natter serve` once to migrate",
            db_path.display(),
            db::migrate::CURRENT_VERSION
        );
    }
    let config = Config::from_args(&ServeArgs::with_data_dir(data_dir))?;
    crate::open_state(config).await
}

/// `PRAGMA user_version` of a database file, read without changing it.
fn schema_version(path: &Path) -> anyhow::Result<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

fn read_password(given: Option<String>) -> anyhow::Result<(String, bool)> {
    if let Some(p) = given {
        return Ok((p, false));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if !line.is_empty() {
            return Ok((line, false));
        }
    }
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    let generated: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok((generated, true))
}

/// `natter user add`.
pub async fn user_add(
    data_dir: &Path,
    email: &str,
    name: &str,
    password: Option<String>,
    admin: bool,
) -> anyhow::Result<()> {
    let state = open(data_dir).await?;
    let (password, generated) = read_password(password)?;
    let user = crate::ops::users::create_account(&state, email, &password, name, admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "created user {} <{}> (id {})",
        user.name, user.email, user.id
    );
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

/// `natter user list`.
pub async fn user_list(data_dir: &Path) -> anyhow::Result<()> {
    let state = open(data_dir).await?;
    let rows = state
        .db()
        .read(db::users::list_all)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{:>6}  {:<32} {:<24} {:<6} {:<8} created",
        "id", "email", "name", "admin", "status"
    );
    for r in rows {
        println!(
            "{:>6}  {:<32} {:<24} {:<6} {:<8} {}",
            r.id,
            r.email,
            r.name,
            if r.is_admin { "yes" } else { "" },
            if r.disabled { "disabled" } else { "active" },
            rfc3339(r.created_at)
        );
    }
    Ok(())
}

/// `natter user reset-password`: sets a new password and revokes all tokens.
pub async fn user_reset_password(
    data_dir: &Path,
    email: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let state = open(data_dir).await?;
    let (password, generated) = read_password(password)?;
    crate::ops::users::valid_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = crate::auth::hash_password(state.limits().hashing(), password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let email_owned = email.to_string();
    state
        .db()
        .write(move |c| {
            let id = db::users::id_by_email(c, &email_owned)?;
            let change = db::users::ProfileChange {
                password_hash: Some(hash),
                ..Default::default()
            };
            db::users::update_profile(c, id, &change)?;
            db::users::revoke(c, id, now_ms())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("password of {email} reset; existing sessions are signed out");
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

/// Runs one change on the account with this email.
async fn update_account<F>(data_dir: &Path, email: &str, change: F) -> anyhow::Result<()>
where
    F: FnOnce(&Connection, crate::model::UserId) -> crate::error::AppResult<()> + Send + 'static,
{
    let state = open(data_dir).await?;
    let email = email.to_string();
    state
        .db()
        .write(move |c| change(c, db::users::id_by_email(c, &email)?))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `natter user disable|enable`.
pub async fn user_set_disabled(data_dir: &Path, email: &str, disabled: bool) -> anyhow::Result<()> {
    update_account(data_dir, email, move |c, id| {
        db::users::set_disabled(c, id, disabled, now_ms())
    })
    .await?;
    if disabled {
        println!("disabled {email}: it cannot log in, and its open connections are closed");
    } else {
        println!("enabled {email}");
    }
    Ok(())
}

/// `natter user promote|demote`: the server administrator role.
pub async fn user_set_admin(data_dir: &Path, email: &str, admin: bool) -> anyhow::Result<()> {
    update_account(data_dir, email, move |c, id| {
        db::users::set_server_admin(c, id, admin)
    })
    .await?;
    println!(
        "{email} is {} a server administrator",
        if admin { "now" } else { "no longer" }
    );
    Ok(())
}

/// `natter backup <file>`: a consistent online snapshot with SQLite's backup
/// API, verified with `PRAGMA integrity_check` before it is reported.
pub fn backup(data_dir: &Path, target: &Path) -> anyhow::Result<()> {
    let source_path = data_dir.join("natter.db");
    if !source_path.exists() {
        bail!("no database at {}", source_path.display());
    }
    if target.exists() {
        bail!("{} exists; choose a new file name", target.display());
    }
    let partial = partial_path(target);
    let _ = std::fs::remove_file(&partial);
    let source = Connection::open_with_flags(&source_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    {
        let mut dest = Connection::open(&partial)?;
        let backup = rusqlite::backup::Backup::new(&source, &mut dest)?;
        // Page steps show progress; a writer that keeps restarting the copy
        // (changes from other connections restart it) gets one final step,
        // which copies everything inside one read snapshot.
        let mut last_remaining = i32::MAX;
        let mut restarts = 0;
        loop {
            let step = if restarts > 3 { -1 } else { 4096 };
            match backup.step(step)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
            let p = backup.progress();
            if p.remaining > last_remaining {
                restarts += 1;
            }
            last_remaining = p.remaining;
            if p.pagecount > 0 {
                eprint!(
                    "\rbackup: {:>3}% ({} of {} pages)",
                    100 * (p.pagecount - p.remaining) / p.pagecount,
                    p.pagecount - p.remaining,
                    p.pagecount
                );
            }
        }
        eprintln!("\rbackup: 100%                                  ");
        drop(backup);
        // The copy carries the source's WAL mode; a backup is one
        // self-contained file, so switch it to a rollback journal.
        dest.pragma_update(None, "journal_mode", "DELETE")?;
    }
    let check = verify(&partial)?;
    std::fs::rename(&partial, target)?;
    println!(
        "backup written to {} ({} messages, integrity ok)",
        target.display(),
        check
    );
    println!(
        "uploads are files: copy {} too (e.g. rsync -a)",
        data_dir.join("uploads").display()
    );
    Ok(())
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    target.with_file_name(name)
}

/// Integrity check of a database file; returns its message count. Opening a
/// WAL-mode file (a backup from an older natter) makes SQLite create
/// `-wal`/`-shm` beside it: those are removed again unless they were there.
fn verify(path: &Path) -> anyhow::Result<i64> {
    let side = |suffix: &str| {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    let made: Vec<PathBuf> = ["-wal", "-shm"]
        .iter()
        .map(|s| side(s))
        .filter(|p| !p.exists())
        .collect();
    let result = verify_open(path);
    for p in made {
        let _ = std::fs::remove_file(p);
    }
    result
}

fn verify_open(path: &Path) -> anyhow::Result<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if result != "ok" {
        bail!("integrity check of {} failed: {result}", path.display());
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > db::migrate::CURRENT_VERSION {
        bail!(
            "{} is from a newer natter (schema {version})",
            path.display()
        );
    }
    Ok(conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?)
}

/// `natter restore <file>`: with the server stopped, verifies the backup and
/// puts it in place; the replaced database is kept beside it.
pub fn restore(data_dir: &Path, backup: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let _lock = lock_data_dir(data_dir)?;
    let messages =
        verify(backup).with_context(|| format!("{} is not a usable backup", backup.display()))?;
    let db_path = data_dir.join("natter.db");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    if db_path.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let from = data_dir.join(format!("natter.db{suffix}"));
            if from.exists() {
                let to = data_dir.join(format!("natter.db.before-restore-{stamp}{suffix}"));
                std::fs::rename(&from, &to)?;
            }
        }
        println!(
            "kept the previous database as {}",
            data_dir
                .join(format!("natter.db.before-restore-{stamp}"))
                .display()
        );
    }
    let tmp = data_dir.join("natter.db.restoring");
    std::fs::copy(backup, &tmp)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &db_path)?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "restored {} ({messages} messages) into {}",
        backup.display(),
        db_path.display()
    )?;
    Ok(())
}
