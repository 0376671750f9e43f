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

use crate::config::{Config, ServeArgs};
use crate::db;
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

/// Which store an admin command works on: the data dir's SQLite file, or
/// `--database` / `DATABASE_URL`.
pub struct Store {
    data_dir: PathBuf,
    database: Option<String>,
}

impl Store {
    /// The data dir and an optional `--database`.
    pub fn new(data_dir: PathBuf, database: Option<String>) -> Store {
        Store {
            data_dir,
            database: database.filter(|d| !d.trim().is_empty()),
        }
    }
}

/// `natter backup|restore` are SQLite file snapshots; on PostgreSQL the
/// database's own tools do it better.
pub fn refuse_postgres(database: Option<&str>, command: &str) -> anyhow::Result<()> {
    let url = crate::config::DatabaseUrl::parse(database, Path::new("."));
    if matches!(url, Ok(crate::config::DatabaseUrl::Postgres(_))) {
        bail!(
            "natter {command} works on the SQLite store only; on PostgreSQL use {} \
             (e.g. pg_dump -Fc -f natter.dump <database>), and copy the uploads directory too",
            if command == "backup" {
                "pg_dump"
            } else {
                "pg_restore"
            }
        );
    }
    Ok(())
}

/// Opens an existing store for an admin command. Only `serve` creates
/// one (a typo in `--data-dir` must not make a new, empty one), and only
/// `serve` migrates a schema: a database of another version is refused.
async fn open(store: &Store) -> anyhow::Result<AppState> {
    let data_dir = &store.data_dir;
    let mut args = ServeArgs::with_data_dir(data_dir);
    args.database = store.database.clone();
    let url = crate::config::DatabaseUrl::parse(args.database.as_deref(), data_dir)?;
    let (version, place) = match &url {
        crate::config::DatabaseUrl::Sqlite(db_path) => {
            if !db_path.is_file() {
                bail!(
                    "no natter database at {} — is the path right? (serve creates it on first start)",
                    db_path.display()
                );
            }
            let probe = db_path.clone();
            let version =
                tokio::task::spawn_blocking(move || db::backup::schema_version(&probe)).await??;
            (version, db_path.display().to_string())
        }
        crate::config::DatabaseUrl::Postgres(pg) => {
            let version = db::pg::schema_version(pg).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no natter database at {} (serve creates it on first start)",
                    url.display()
                )
            })?;
            (version, url.display())
        }
    };
    if version != db::migrate::CURRENT_VERSION {
        let which = if version < db::migrate::CURRENT_VERSION {
            "older"
        } else {
            "newer"
        };
        bail!(
            "the database at {place} has schema {version}, {which} than this natter's {}: \
             admin commands never migrate it; run the matching natter, or start this one's \
             `natter serve` once to migrate",
            db::migrate::CURRENT_VERSION
        );
    }
    if !data_dir.is_dir() {
        std::fs::create_dir_all(data_dir)?;
    }
    let config = Config::from_args(&args)?;
    crate::open_state(config).await
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
    store: &Store,
    email: &str,
    name: &str,
    password: Option<String>,
    admin: bool,
) -> anyhow::Result<()> {
    let state = open(store).await?;
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
pub async fn user_list(store: &Store) -> anyhow::Result<()> {
    let state = open(store).await?;
    let rows = state
        .db()
        .list_users()
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
    store: &Store,
    email: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let state = open(store).await?;
    let (password, generated) = read_password(password)?;
    crate::ops::users::valid_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = crate::auth::hash_password(state.limits().hashing(), password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    state
        .db()
        .reset_password(email.to_string(), hash)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("password of {email} reset; existing sessions are signed out");
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

/// `natter user disable|enable`.
pub async fn user_set_disabled(store: &Store, email: &str, disabled: bool) -> anyhow::Result<()> {
    let state = open(store).await?;
    state
        .db()
        .set_disabled_by_email(email.to_string(), disabled)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if disabled {
        println!("disabled {email}: it cannot log in, and its open connections are closed");
    } else {
        println!("enabled {email}");
    }
    Ok(())
}

/// `natter user promote|demote`: the server administrator role.
pub async fn user_set_admin(store: &Store, email: &str, admin: bool) -> anyhow::Result<()> {
    let state = open(store).await?;
    state
        .db()
        .set_server_admin_by_email(email.to_string(), admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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
    db::backup::snapshot(&source_path, &partial)?;
    let check = db::backup::verify(&partial)?;
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

/// `natter restore <file>`: with the server stopped, verifies the backup and
/// puts it in place; the replaced database is kept beside it.
pub fn restore(data_dir: &Path, backup: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let _lock = lock_data_dir(data_dir)?;
    let messages = db::backup::verify(backup)
        .with_context(|| format!("{} is not a usable backup", backup.display()))?;
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

/// `natter migrate-store --from sqlite://... --to postgres://...`: copies
/// the whole SQLite store into an empty PostgreSQL database (see
/// `db::copy`). When the SQLite file sits in a data dir a server used, the
/// data dir's lock is held for the copy, so a running server there is
/// refused rather than copied mid-write.
pub async fn migrate_store(from: &str, to: &str) -> anyhow::Result<()> {
    let from = from.trim();
    let to = to.trim();
    let Some(path) = from.strip_prefix("sqlite://").filter(|p| !p.is_empty()) else {
        bail!(
            "--from {:?}: not an SQLite URL; use sqlite://<data-dir>/natter.db",
            crate::config::redact_password(from)
        );
    };
    let path = PathBuf::from(path);
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!(
            "--to {:?}: not a PostgreSQL URL; use postgres://user@host/db",
            crate::config::redact_password(to)
        );
    }
    if !path.is_file() {
        bail!(
            "--from: no SQLite database at {} (is the path right?)",
            path.display()
        );
    }
    let data_dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let _lock = if data_dir.join(LOCK_FILE).exists() {
        Some(lock_data_dir(&data_dir)?)
    } else {
        None
    };
    let place = crate::config::redact_password(to);
    let rt = tokio::runtime::Handle::current();
    let to_owned = to.to_string();
    let header = format!("copying {} into {place}", path.display());
    let mut first = true;
    let summary = tokio::task::spawn_blocking(move || {
        db::copy::sqlite_to_postgres(&path, &to_owned, &rt, &mut |t| {
            if std::mem::take(&mut first) {
                println!("{header}");
            }
            println!(
                "  {:<18} {:>10} rows (SQLite {}, PostgreSQL {})",
                t.table, t.target, t.source, t.target
            );
        })
    })
    .await??;
    let rows: i64 = summary.tables.iter().map(|t| t.target).sum();
    println!(
        "done: {rows} rows in {} tables copied and counted on both sides in {:.1} s",
        summary.tables.len(),
        summary.elapsed.as_secs_f64()
    );
    println!(
        "uploaded files were not moved: they stay in {}",
        data_dir.join("uploads").display()
    );
    println!(
        "start the server with: natter serve --database {place} --data-dir {}",
        data_dir.display()
    );
    Ok(())
}
