-- Who may do what: a token per person with a role, kept only as the SHA-256 of its secret; and
-- the audit log of every write and command (who, when, what, from where, how it ended).
CREATE TABLE IF NOT EXISTS api_tokens (
    name          VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    hash          CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at    DATETIME(6)  NOT NULL,
    last_used_at  DATETIME(6)  NULL,
    PRIMARY KEY (name),
    UNIQUE KEY uq_api_tokens_hash (hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS audit_log (
    id        BIGINT       NOT NULL AUTO_INCREMENT,
    at        DATETIME(6)  NOT NULL,
    actor     VARCHAR(64)  NOT NULL,
    role      VARCHAR(16)  NULL,
    address   VARCHAR(64)  NOT NULL,
    method    VARCHAR(16)  NOT NULL,
    path      VARCHAR(1024) NOT NULL,
    request   TEXT         NULL,
    status    INT UNSIGNED NOT NULL,
    outcome   VARCHAR(1024) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_audit_log_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
