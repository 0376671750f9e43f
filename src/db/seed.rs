//! Bulk seeding for `natter bench history --database postgres://...`: the
//! rows natter's writer would write, made server-side with
//! `generate_series` (a million messages in seconds instead of a million
//! round trips). SQLite's seed lives in the bench (one local transaction).

use tokio::runtime::Handle;

use super::pg::{pool, PgConn};
use super::sql::Conn;

fn connect(url: &str, rt: &Handle) -> anyhow::Result<PgConn> {
    let pool = pool(url, 1)?;
    let client = rt
        .block_on(pool.get())
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", super::pg::host_of(url)))?;
    Ok(PgConn::new(client, rt.clone()))
}

/// Writes `count` messages spread over `chats` (and their events) in one
/// transaction; returns (newest event id, newest message id).
pub fn seed_postgres(
    url: &str,
    rt: &Handle,
    users: (i64, i64),
    chats: &[i64],
    count: u64,
) -> anyhow::Result<(i64, i64)> {
    let conn = connect(url, rt)?;
    let c = Conn::Pg(&conn);
    let now = chrono::Utc::now().timestamp_millis();
    let list = chats
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let n = chats.len();
    c.execute_batch("BEGIN")?;
    let before: i64 = c.query_row("SELECT coalesce(max(id), 0) FROM messages", (), |r| {
        r.get(0)
    })?;
    c.execute_batch(&format!(
        "INSERT INTO messages (chat_id, sender_id, message_type, content, created_at, updated_at)
         SELECT (ARRAY[{list}]::BIGINT[])[1 + (i % {n})],
                CASE WHEN i % 2 = 0 THEN {a} ELSE {b} END, 'TEXT',
                'seeded message ' || i || ' with a little text to make it realistic',
                {now} - ({count} - i) * 1000, {now} - ({count} - i) * 1000
         FROM generate_series(0, {last}) AS i ORDER BY i;
         INSERT INTO events (chat_id, kind, message_id, user_id, created_at)
         SELECT chat_id, 'message:new', id, NULL, created_at FROM messages
         WHERE id > {before} ORDER BY id;",
        a = users.0,
        b = users.1,
        last = count.saturating_sub(1),
    ))?;
    for &chat in chats {
        c.execute(
            "UPDATE chats SET last_message_id = (SELECT max(id) FROM messages WHERE chat_id = ?1),
                 last_activity = (SELECT max(id) FROM events WHERE chat_id = ?1), updated_at = ?2
             WHERE id = ?1",
            super::sql::params![chat, now],
        )?;
        c.execute(
            "UPDATE chat_participants SET
                 delivered_up_to = (SELECT max(id) FROM messages WHERE chat_id = ?1),
                 read_up_to = GREATEST((SELECT max(id) FROM messages WHERE chat_id = ?1) - 40, 0),
                 joined_at = LEAST(joined_at, ?2)
             WHERE chat_id = ?1",
            super::sql::params![chat, now - (count as i64 + 1) * 1000],
        )?;
    }
    c.execute_batch("COMMIT; ANALYZE;")?;
    let max_event: i64 = c.query_row("SELECT max(id) FROM events", (), |r| r.get(0))?;
    let max_id: i64 = c.query_row("SELECT max(id) FROM messages", (), |r| r.get(0))?;
    Ok((max_event, max_id))
}

/// Messages stored (not counting group notes).
pub fn count_postgres(url: &str, rt: &Handle) -> anyhow::Result<i64> {
    let conn = connect(url, rt)?;
    Ok(Conn::Pg(&conn).query_row(
        "SELECT count(*) FROM messages WHERE message_type != 'SYSTEM'",
        (),
        |r| r.get(0),
    )?)
}
