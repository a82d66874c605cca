-- Who may do what: a token per person with a role, kept only as the SHA-256 of its secret; and
-- the audit log of every write and command (who, when, what, from where, how it ended).
CREATE TABLE IF NOT EXISTS api_tokens (
    name          TEXT NOT NULL PRIMARY KEY,
    role          TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    role      TEXT    NULL,
    address   TEXT    NOT NULL,
    method    TEXT    NOT NULL,
    path      TEXT    NOT NULL,
    request   TEXT    NULL,
    status    INTEGER NOT NULL,
    outcome   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_audit_log_at ON audit_log (at);
