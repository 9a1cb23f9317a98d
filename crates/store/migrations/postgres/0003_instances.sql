-- Instance membership: one row per claimed hub instance name, held by one incarnation (a
-- process start) until it releases it or its heartbeat goes stale. Only heartbeat_at
-- changes while an instance runs and it is not indexed, so heartbeats are HOT updates.
CREATE TABLE instances (
    name         text COLLATE "C" PRIMARY KEY,
    incarnation  text COLLATE "C" NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
) WITH (fillfactor = 50);
