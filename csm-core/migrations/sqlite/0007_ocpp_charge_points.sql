-- The registry of OCPP charge points: each one's connection and what it said of itself, written
-- by the server that serves it (`csm-cli ocpp status`, GET /api/ocpp/charge-points).
CREATE TABLE IF NOT EXISTS ocpp_charge_points (
    station_id       TEXT    NOT NULL PRIMARY KEY,
    connected        BOOLEAN NOT NULL,
    connected_at     TEXT    NULL,
    disconnected_at  TEXT    NULL,
    last_message_at  TEXT    NULL,
    last_action      TEXT    NULL,
    vendor           TEXT    NULL,
    model            TEXT    NULL,
    firmware         TEXT    NULL,
    firmware_status  TEXT    NULL,
    heartbeat_secs   INTEGER NOT NULL
);
