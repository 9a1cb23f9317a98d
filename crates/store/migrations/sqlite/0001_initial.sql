-- Initial schema of the SQLite store.
-- Times are INTEGER microseconds since the Unix epoch; JSON is TEXT.

-- Named counters (lease tokens).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('lease_token', 0);

-- Every inbound message, raw, deduplicated by (source, message_id).
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    raw         TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    UNIQUE (source, message_id)
) STRICT;
-- inbound_by_status
CREATE INDEX inbox_by_status ON inbox (status, id);

-- Current version of each event stream (optimistic concurrency).
CREATE TABLE streams (
    stream  TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Append-only event log; global_seq is the global order (commit order: one writer).
CREATE TABLE events (
    global_seq  INTEGER PRIMARY KEY,
    stream      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    causation   TEXT,
    correlation TEXT,
    UNIQUE (stream, version)
) STRICT;
-- read_since
CREATE INDEX events_by_recorded_at ON events (recorded_at);

-- Task queue. `head` marks the oldest task of its key; `ready_at` is when the task can be
-- leased if it is the head: due_at when pending, lease expiry when leased, NULL when dead.
-- AUTOINCREMENT: ids are never reused, so a retried dead letter can take its id back.
CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    lane             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    key              TEXT NOT NULL,
    dedupe           TEXT,
    idempotency_key  TEXT NOT NULL,
    payload          TEXT NOT NULL,
    due_at           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    blocking         INTEGER NOT NULL,
    order_id         TEXT,
    created_at       INTEGER NOT NULL,
    last_error       TEXT,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'dead')),
    head             INTEGER NOT NULL,
    ready_at         INTEGER,
    lease_token      INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    dead_letter_id   INTEGER
) STRICT;
-- lease: a range scan over the heads of a lane that are ready
CREATE INDEX tasks_ready ON tasks (lane, ready_at) WHERE head = 1;
-- head upkeep
CREATE INDEX tasks_by_key ON tasks (key, id);
-- the "no other unexpired lease in the key" check of lease (small: leased rows only)
CREATE INDEX tasks_leased_by_key ON tasks (key) WHERE state = 'leased';
-- enqueue dedupe
CREATE INDEX tasks_pending_dedupe ON tasks (lane, dedupe)
    WHERE state = 'pending' AND dedupe IS NOT NULL;
-- release_all
CREATE INDEX tasks_by_owner ON tasks (lease_owner) WHERE state = 'leased';
-- tasks_for_order
CREATE INDEX tasks_by_order ON tasks (order_id, id) WHERE order_id IS NOT NULL;
-- lane_depths
CREATE INDEX tasks_by_lane ON tasks (lane, state, ready_at);

-- Dead letters, with a snapshot of the task as it died.
CREATE TABLE dead_letters (
    id              INTEGER PRIMARY KEY,
    task_id         INTEGER NOT NULL,
    lane            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL,
    dedupe          TEXT,
    idempotency_key TEXT NOT NULL,
    payload         TEXT NOT NULL,
    due_at          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    blocking        INTEGER NOT NULL,
    order_id        TEXT,
    task_created_at INTEGER NOT NULL,
    last_error      TEXT,
    class           TEXT NOT NULL,
    error           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    resolution      TEXT,
    closed_at       INTEGER
) STRICT;
CREATE INDEX dead_letters_by_status ON dead_letters (status, id);
-- filter by order, and auto-resolution by (order, kind) of open ones
CREATE INDEX dead_letters_by_order ON dead_letters (order_id, kind, status);

-- Subscriber positions.
CREATE TABLE cursors (
    name       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Order summaries (read model).
CREATE TABLE orders (
    order_id          TEXT PRIMARY KEY,
    sf_id             TEXT,
    sf_number         TEXT,
    erp_ref           TEXT,
    account           TEXT NOT NULL,
    channel           TEXT NOT NULL,
    status            TEXT NOT NULL,
    total             TEXT NOT NULL,
    currency          TEXT NOT NULL,
    captured_at       INTEGER,
    booked_at         INTEGER,
    shipped_at        INTEGER,
    delivered_at      INTEGER,
    invoiced_at       INTEGER,
    paid_at           INTEGER,
    ended_at          INTEGER,
    updated_at        INTEGER NOT NULL,
    version           INTEGER NOT NULL,
    body              TEXT NOT NULL,
    sf_synced_status  TEXT,
    sf_synced_version INTEGER,
    sf_synced_at      INTEGER
) STRICT;
-- orders by status (ordered by id), order_counts
CREATE INDEX orders_by_status ON orders (status, order_id);
-- health views: orders in a status not updated since
CREATE INDEX orders_by_status_updated ON orders (status, updated_at);
CREATE INDEX orders_by_account ON orders (account, order_id);
-- orders whose Salesforce copy is behind
CREATE INDEX orders_sf_behind ON orders (order_id)
    WHERE sf_synced_version IS NULL OR sf_synced_version < version;

-- External ids naming orders; resolve looks up by value in any namespace.
CREATE TABLE refs (
    value     TEXT NOT NULL,
    namespace TEXT NOT NULL,
    order_id  TEXT NOT NULL,
    PRIMARY KEY (value, namespace)
) STRICT, WITHOUT ROWID;

-- Inventory cache.
CREATE TABLE inventory (
    sku        TEXT NOT NULL,
    location   TEXT NOT NULL,
    on_hand    INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    available  INTEGER NOT NULL,
    as_of      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sku, location)
) STRICT, WITHOUT ROWID;

-- Accounts.
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    sf_id      TEXT,
    erp_ref    TEXT,
    name       TEXT NOT NULL,
    tier       TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Order timelines.
CREATE TABLE timeline (
    id          INTEGER PRIMARY KEY,
    order_id    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    summary     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    system      TEXT,
    outcome     TEXT,
    latency_ms  INTEGER,
    correlation TEXT
) STRICT;
CREATE INDEX timeline_by_order ON timeline (order_id, id);

-- Audit log (append-only).
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;

-- Small keyed records (API keys, idempotency records, settings).
CREATE TABLE kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT, WITHOUT ROWID;
