-- The task state check was `state IN ('pending', 'leased', 'dead')`: SQLite evaluates an IN
-- list of three or more values through a temporary b-tree, built again on every insert and
-- update of a task (every enqueue, lease, retry and completion). The same check written as
-- comparisons needs none. SQLite cannot alter a check, so the table is rebuilt: same
-- columns, rows, ids, id sequence and indexes.
CREATE TABLE tasks_next (
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

-- Ids are never reused: the new table continues the old sequence, not its highest row.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'tasks_next', seq FROM sqlite_sequence WHERE name = 'tasks'
  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tasks_next');
UPDATE sqlite_sequence
SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'tasks'))
WHERE name = 'tasks_next' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tasks');

DROP TABLE tasks;
ALTER TABLE tasks_next RENAME TO tasks;

CREATE INDEX tasks_ready ON tasks (lane, ready_at) WHERE head = 1;
CREATE INDEX tasks_by_key ON tasks (key, id);
CREATE INDEX tasks_pending_dedupe ON tasks (lane, dedupe)
    WHERE state = 'pending' AND dedupe IS NOT NULL;
CREATE INDEX tasks_by_order ON tasks (order_id, id) WHERE order_id IS NOT NULL;
