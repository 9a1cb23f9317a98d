-- Task ids and lease tokens come from the writer thread's own counters (one process owns a
-- file; the counters are saved in `counters` with every commit), no longer from
-- AUTOINCREMENT: SQLite reads and rewrites `sqlite_sequence` for every insert into `tasks`
-- (≈ 9k instructions per insert in a callgrind run of the step's statements from Python's
-- sqlite3), and the lease token counter cost an update and a read
-- per lease. Ids are still never reused: the counter only moves forward.
INSERT INTO counters (name, value)
SELECT 'task_id', max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0),
                      coalesce((SELECT max(id) FROM tasks), 0),
                      coalesce((SELECT max(task_id) FROM dead_letters), 0));

-- SQLite cannot drop AUTOINCREMENT from a table, so the table is rebuilt: same columns,
-- rows, ids and indexes.
CREATE TABLE tasks_next (
    id               INTEGER PRIMARY KEY,
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
    state            TEXT NOT NULL
                     CHECK (state = 'pending' OR state = 'leased' OR state = 'dead'),
    head             INTEGER NOT NULL,
    ready_at         INTEGER,
    lease_token      INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    dead_letter_id   INTEGER
) STRICT;

INSERT INTO tasks_next (id, lane, kind, key, dedupe, idempotency_key, payload, due_at,
                        attempts, blocking, order_id, created_at, last_error, state, head,
                        ready_at, lease_token, lease_owner, lease_expires_at, dead_letter_id)
SELECT id, lane, kind, key, dedupe, idempotency_key, payload, due_at, attempts, blocking,
       order_id, created_at, last_error, state, head, ready_at, lease_token, lease_owner,
       lease_expires_at, dead_letter_id
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_next RENAME TO tasks;

CREATE INDEX tasks_ready ON tasks (lane, ready_at) WHERE head = 1;
CREATE INDEX tasks_by_key ON tasks (key, id);
CREATE INDEX tasks_pending_dedupe ON tasks (lane, dedupe)
    WHERE state = 'pending' AND dedupe IS NOT NULL;
CREATE INDEX tasks_by_order ON tasks (order_id, id) WHERE order_id IS NOT NULL;

-- Every summary upsert moved the order in `orders_by_status_updated` (its `updated_at`
-- changes with every step). It served only the `updated_before` filter, which no view of
-- the hub uses; that filter now reads `orders_by_status` (or the table) and checks the time.
DROP INDEX orders_by_status_updated;
