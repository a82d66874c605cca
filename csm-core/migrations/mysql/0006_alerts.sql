-- Alerts: channels (where messages go), rules (what fires them), the outbox (every fired alert,
-- written before it is sent, with its delivery state) and the alerts still open (fired, not yet
-- resolved), so a restart neither repeats nor forgets them.

CREATE TABLE IF NOT EXISTS alert_channels (
    name        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind        VARCHAR(16)  NOT NULL,
    url         TEXT         NOT NULL,
    secret      TEXT         NULL,
    created_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A rule's definition is its JSON document (the API's shape), checked before it is stored.
CREATE TABLE IF NOT EXISTS alert_rules (
    id          BIGINT NOT NULL AUTO_INCREMENT,
    definition  TEXT         NOT NULL,
    created_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- `due_at`: not sent before (quiet hours, the next retry); `claim` and `claimed_until`: which
-- sender holds the row, and until when (a sender that dies lets go when the claim expires).
CREATE TABLE IF NOT EXISTS alert_outbox (
    id            CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    rule_id       BIGINT NOT NULL,
    channel       VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    payload       TEXT         NOT NULL,
    state         VARCHAR(16)  NOT NULL,
    attempts      INT UNSIGNED NOT NULL DEFAULT 0,
    last_error    TEXT         NULL,
    created_at    DATETIME(6)  NOT NULL,
    due_at        DATETIME(6)  NOT NULL,
    claim         CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NULL,
    claimed_until DATETIME(6)  NULL,
    delivered_at  DATETIME(6)  NULL,
    PRIMARY KEY (id),
    KEY idx_alert_outbox_due (state, due_at),
    KEY idx_alert_outbox_claim (claim),
    KEY idx_alert_outbox_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Port 0: the station as a whole (offline, free ports).
CREATE TABLE IF NOT EXISTS alert_open (
    rule_id     BIGINT NOT NULL,
    station_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    port        INT UNSIGNED NOT NULL,
    alert_id    CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    opened_at   DATETIME(6)  NOT NULL,
    PRIMARY KEY (rule_id, station_id, port)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
