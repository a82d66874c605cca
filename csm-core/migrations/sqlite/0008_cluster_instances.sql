-- When each instance of a cluster last reached the cluster's Redis (SQLite runs one instance;
-- the table keeps both backends' schemas alike).
CREATE TABLE IF NOT EXISTS cluster_instances (
    instance_id     TEXT NOT NULL PRIMARY KEY,
    redis_seen_at   TEXT NOT NULL,
    reaching_since  TEXT NOT NULL
);
