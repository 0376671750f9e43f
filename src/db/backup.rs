//! SQLite file snapshots for `natter backup` / `natter restore`: the
//! SQLite backup API and integrity checks. PostgreSQL has its own tools
//! (`pg_dump`, `pg_restore`); `natter backup` refuses there and says so.

use std::path::{Path, PathBuf};

use anyhow::bail;
use rusqlite::{Connection, OpenFlags};

/// Copies the database at `source_path` into a new file `partial`
/// (a consistent snapshot while the server writes), in rollback-journal mode.
pub fn snapshot(source_path: &Path, partial: &Path) -> anyhow::Result<()> {
    let source = Connection::open_with_flags(source_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    {
        let mut dest = Connection::open(partial)?;
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
    Ok(())
}

/// `PRAGMA user_version` of a database file, read without changing it.
pub fn schema_version(path: &Path) -> anyhow::Result<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Integrity check of a database file; returns its message count. Opening a
/// WAL-mode file (a backup from an older natter) makes SQLite create
/// `-wal`/`-shm` beside it: those are removed again unless they were there.
pub fn verify(path: &Path) -> anyhow::Result<i64> {
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
    if version > super::migrate::CURRENT_VERSION {
        bail!(
            "{} is from a newer natter (schema {version})",
            path.display()
        );
    }
    Ok(conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?)
}
