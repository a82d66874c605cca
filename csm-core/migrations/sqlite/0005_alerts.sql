-- Alerts: channels (where messages go), rules (what fires them), the outbox (every fired alert,
-- written before it is sent, with its delivery state) and the alerts still open (fired, not yet
-- resolved), so a restart neither repeats nor forgets them.

CREATE TABLE IF NOT EXISTS alert_channels (
    name        TEXT NOT NULL PRIMARY KEY,
    kind        TEXT NOT NULL,
    url         TEXT NOT NULL,
    secret      TEXT NULL,
    created_at  TEXT NOT NULL
);

-- A rule's definition is its JSON document (the API's shape), checked before it is stored.
CREATE TABLE IF NOT EXISTS alert_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    definition  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- `due_at`: not sent before (quiet hours, the next retry); `claim` and `claimed_until`: which
-- sender holds the row, and until when (a sender that dies lets go when the claim expires).
CREATE TABLE IF NOT EXISTS alert_outbox (
    id            TEXT    NOT NULL PRIMARY KEY,
    rule_id       INTEGER NOT NULL,
    channel       TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT    NULL,
    created_at    TEXT    NOT NULL,
    due_at        TEXT    NOT NULL,
    claim         TEXT    NULL,
    claimed_until TEXT    NULL,
    delivered_at  TEXT    NULL
);
CREATE INDEX IF NOT EXISTS idx_alert_outbox_due ON alert_outbox (state, due_at);
CREATE INDEX IF NOT EXISTS idx_alert_outbox_claim ON alert_outbox (claim);
CREATE INDEX IF NOT EXISTS idx_alert_outbox_created ON alert_outbox (created_at);

-- Port 0: the station as a whole (offline, free ports).
CREATE TABLE IF NOT EXISTS alert_open (
    rule_id     INTEGER NOT NULL,
    station_id  TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    alert_id    TEXT    NOT NULL,
    opened_at   TEXT    NOT NULL,
    PRIMARY KEY (rule_id, station_id, port)
) WITHOUT ROWID;
