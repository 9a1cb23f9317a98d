-- Instance membership: one row per claimed hub instance name, held by one incarnation (a
-- process start) until it releases it or its heartbeat goes stale.
CREATE TABLE instances (
    name         TEXT PRIMARY KEY,
    incarnation  TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
