-- Stations, current port state, station health and the history of status events.

CREATE TABLE IF NOT EXISTS stations (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    address     TEXT    NULL,
    lat         REAL    NULL,
    lng         REAL    NULL,
    vendor      TEXT    NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT 1,
    port_count  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_stations_vendor ON stations (vendor);

-- One row per port: the latest durable state. Lookups are by station (primary key prefix).
CREATE TABLE IF NOT EXISTS port_states (
    station_id      TEXT    NOT NULL,
    port            INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    raw_code        TEXT    NULL,
    voltage         REAL    NULL,
    current         REAL    NULL,
    power           REAL    NULL,
    energy_kwh      REAL    NULL,
    session_ends_at TEXT    NULL,
    since           TEXT    NOT NULL,
    observed_at     TEXT    NOT NULL,
    PRIMARY KEY (station_id, port)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS station_health (
    station_id  TEXT    NOT NULL PRIMARY KEY,
    last_ok_at  TEXT    NULL,
    last_error  TEXT    NULL,
    checked_at  TEXT    NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0
);

-- History. The unique index serves lookups by station, by station and port, and by station,
-- port and time, and makes a retried batch harmless (INSERT OR IGNORE).
CREATE TABLE IF NOT EXISTS status_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id  TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    old_status  TEXT    NULL,
    new_status  TEXT    NOT NULL,
    at          TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_status_events_station_port_at ON status_events (station_id, port, at);
CREATE INDEX IF NOT EXISTS idx_status_events_at ON status_events (at);
