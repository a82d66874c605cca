-- Each charger's message log, when CSM_OCPP_LOG_DATABASE keeps it in the database too: every
-- frame both ways (id tags masked), the instance that held the charger, kept
-- CSM_RETAIN_OCPP_LOG_DAYS.
CREATE TABLE IF NOT EXISTS ocpp_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id  TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    direction   TEXT    NOT NULL,
    connection  INTEGER NOT NULL,
    action      TEXT    NULL,
    frame       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_ocpp_messages_station ON ocpp_messages (station_id, id);
CREATE INDEX IF NOT EXISTS idx_ocpp_messages_at ON ocpp_messages (at);
