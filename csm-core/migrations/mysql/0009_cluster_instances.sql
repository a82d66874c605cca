-- When each instance of a cluster last reached the cluster's Redis, and since when without a
-- break: an instance that cannot reach Redis tells a cut of its own (others have reached it
-- all along: it stops refreshing) from Redis being away for all (it keeps refreshing).
CREATE TABLE IF NOT EXISTS cluster_instances (
    instance_id     VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    redis_seen_at   DATETIME(6)  NOT NULL,
    -- Since when its beats have reached Redis without a break.
    reaching_since  DATETIME(6)  NOT NULL,
    PRIMARY KEY (instance_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
