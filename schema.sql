-- natter: the whole current schema. A fresh database runs this file once;
-- older databases are migrated step by step by src/db/migrate.rs.
-- Timestamps are INTEGER milliseconds since the Unix epoch (UTC).
-- Ids use AUTOINCREMENT so they are never reused: message and event ids are
-- server-wide cursors and must only ever grow.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL,
    email_norm    TEXT NOT NULL UNIQUE,          -- lower-cased email: uniqueness is case-insensitive
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    avatar_url    TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0,    -- server administrator (natter user promote)
    disabled      INTEGER NOT NULL DEFAULT 0,
    token_version INTEGER NOT NULL DEFAULT 0,    -- bumped to revoke every token of the user
    revoked_at    INTEGER,                       -- last disable/reset: a running server closes the user's sockets
    last_seen     INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE INDEX users_by_revoked ON users(revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE chats (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT,
    is_group        INTEGER NOT NULL,
    group_avatar    TEXT,
    direct_key      TEXT UNIQUE,                 -- 'lowId:highId' for a 1-on-1: no duplicates, even under races
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_message_id INTEGER,
    last_activity   INTEGER NOT NULL DEFAULT 0   -- event id of the newest creation/message: orders chat lists strictly
);

CREATE TABLE chat_participants (
    chat_id         INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    joined_at       INTEGER NOT NULL,
    left_at         INTEGER,                     -- NULL while a member
    joined_event    INTEGER NOT NULL DEFAULT 0,  -- /sync shows this member the chat's events after this id
    delivered_up_to INTEGER NOT NULL DEFAULT 0,  -- receipts are positional, like WhatsApp's
    read_up_to      INTEGER NOT NULL DEFAULT 0,
    cleared_up_to   INTEGER NOT NULL DEFAULT 0,  -- "clear chat": messages up to this id are hidden from this user
    muted_until     INTEGER,                     -- ms; no pushes for this chat before then (NULL: not muted)
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
-- a user's chats (chat list, sync, access checks)
CREATE INDEX participants_by_user ON chat_participants(user_id, chat_id);

CREATE TABLE uploads (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,            -- random stored name under uploads/chat/
    uploader_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    file_name   TEXT NOT NULL,                   -- original name, sanitised for display
    file_size   INTEGER NOT NULL,
    mime_type   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    width       INTEGER,
    height      INTEGER,
    thumb_name  TEXT,                            -- stored name of the preview, for images
    created_at  INTEGER NOT NULL,
    is_avatar   INTEGER NOT NULL DEFAULT 0       -- set as a user's or group's avatar: readable by every signed-in user, never swept
);
CREATE INDEX uploads_by_uploader ON uploads(uploader_id);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id        INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    sender_id      INTEGER NOT NULL REFERENCES users(id),
    message_type   TEXT NOT NULL,
    content        TEXT,
    upload_id      INTEGER REFERENCES uploads(id) ON DELETE SET NULL,
    file_url       TEXT,
    file_name      TEXT,
    file_size      INTEGER,
    file_mime_type TEXT,
    reply_to_id    INTEGER,
    client_id      TEXT,
    is_edited      INTEGER NOT NULL DEFAULT 0,
    is_deleted     INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    system         TEXT,                         -- SYSTEM messages (group notes): {action, actorId, userIds, name} as JSON
    duration_ms    INTEGER,                      -- voice messages: the recording's length
    waveform       TEXT,                         -- voice messages: amplitude bytes, base64
    played_by      TEXT,                         -- voice messages: JSON array of the user ids who played it (message_plays, denormalised)
    link_preview   TEXT,                         -- {url, title, description, siteName, imageUrl} as JSON, filled after the send
    preview_upload_id INTEGER REFERENCES uploads(id) ON DELETE SET NULL, -- the preview's thumbnail (readable by the chat's members)
    reactions      TEXT,                         -- JSON [{emoji, count, userIds}] (message_reactions, denormalised)
    is_forwarded   INTEGER NOT NULL DEFAULT 0    -- sent with forwardedFromId: a copy of another message
);
-- history pages, cursors and unread counts all walk one chat's ids
CREATE INDEX messages_by_chat ON messages(chat_id, id);
-- idempotent sends: one message per (chat, sender, clientId)
CREATE UNIQUE INDEX messages_by_client_id ON messages(chat_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX messages_by_upload ON messages(upload_id) WHERE upload_id IS NOT NULL;
CREATE INDEX messages_by_created ON messages(created_at);
CREATE INDEX messages_by_preview_upload ON messages(preview_upload_id) WHERE preview_upload_id IS NOT NULL;

-- "Delete for me": messages one user no longer sees. History probes the
-- primary key once per row it walks; deleting a message cascades by id.
CREATE TABLE hidden_messages (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL,
    PRIMARY KEY (user_id, message_id)
) WITHOUT ROWID;
CREATE INDEX hidden_by_message ON hidden_messages(message_id);

-- Reactions (issue 19): one per member and message; a new one replaces it.
CREATE TABLE message_reactions (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL,
    emoji      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id)
) WITHOUT ROWID;

-- When a member's delivered/read position advanced: gives each message's
-- deliveredAt/readAt per member without a row per (message, member).
CREATE TABLE receipt_marks (
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    kind    INTEGER NOT NULL,                    -- 0 delivered, 1 read
    up_to   INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user_id, kind, up_to)
) WITHOUT ROWID;

-- The change log that GET /sync replays: the events the WebSocket pushes.
-- Payloads are rebuilt from the current rows at read time, so a deleted
-- message's content can never come back through /sync.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id    INTEGER NOT NULL,
    kind       TEXT NOT NULL,                    -- message:new, message:updated, ...
    message_id INTEGER,
    user_id    INTEGER,                          -- set: only this user sees it (chat:new/chat:removed)
    created_at INTEGER NOT NULL,
    data       TEXT                              -- payload of events not rebuilt from rows (message:reaction), JSON
);
CREATE INDEX events_by_chat ON events(chat_id, id) WHERE user_id IS NULL;
CREATE INDEX events_by_user ON events(user_id, id) WHERE user_id IS NOT NULL;

-- Web Push subscriptions (RFC 8030): one per browser/device, tied to its user.
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint   TEXT NOT NULL UNIQUE,             -- the push service URL (https, public host)
    p256dh     TEXT NOT NULL,                    -- the browser's P-256 key, base64url
    auth       TEXT NOT NULL,                    -- its 16-byte auth secret, base64url
    created_at INTEGER NOT NULL
);
CREATE INDEX push_by_user ON push_subscriptions(user_id);

-- "Played" receipts of voice messages: one row per (message, member who
-- played it). Per message, not positional: playing one voice note says
-- nothing about the ones before it.
CREATE TABLE message_plays (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL,
    played_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id)
) WITHOUT ROWID;

-- Message search (issue 19). SQLite: an FTS5 index of each visible
-- message's text and file name, contentless (it stores only the index; the
-- text stays in `messages`), kept by triggers inside the transaction that
-- writes the message: a send indexes it, an edit re-indexes it, a delete
-- for everyone and the retention sweep remove it. `unicode61
-- remove_diacritics 2`: case- and accent-insensitive words, prefix queries
-- (BENCHMARKS.md "Search" compares it with `trigram`). PostgreSQL: a GIN
-- index over the same text (`simple` configuration), maintained by the
-- engine. Lines between the two markers are SQLite only; `-- postgres:`
-- lines are PostgreSQL only (src/db/migrate.rs, postgres_schema).
-- sqlite only {
CREATE VIRTUAL TABLE message_search USING fts5(
    content, file_name,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN new.is_deleted = 0 AND new.message_type != 'SYSTEM'
 AND (new.content IS NOT NULL OR new.file_name IS NOT NULL)
BEGIN
    INSERT INTO message_search (rowid, content, file_name) VALUES (new.id, new.content, new.file_name);
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content, file_name, is_deleted ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
    INSERT INTO message_search (rowid, content, file_name)
    SELECT new.id, new.content, new.file_name
     WHERE new.is_deleted = 0 AND new.message_type != 'SYSTEM'
       AND (new.content IS NOT NULL OR new.file_name IS NOT NULL);
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;
-- }
-- postgres: CREATE INDEX message_search ON messages USING gin (to_tsvector('simple', regexp_replace(coalesce(content, '') || ' ' || coalesce(file_name, ''), '[[:space:][:punct:]]+', ' ', 'g'))) WHERE is_deleted = 0 AND message_type <> 'SYSTEM';

PRAGMA user_version = 6;
