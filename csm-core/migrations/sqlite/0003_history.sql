-- History beyond status events: readings over time (compressed: stored on a status change,
-- beyond a deadband, or after a heartbeat), charging sessions, and hourly roll-ups of the time
-- each port spent in each status. Statistics read roll-ups and sessions, never raw readings.
-- Hours are UTC hour starts; weekdays and local hours are counted when reading.

CREATE TABLE IF NOT EXISTS port_readings (
    station_id  TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    voltage     REAL    NULL,
    current     REAL    NULL,
    power       REAL    NULL,
    energy_kwh  REAL    NULL,
    PRIMARY KEY (station_id, port, at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_port_readings_at ON port_readings (at);

-- A port's stay in `occupied`. `ended_at` is NULL while it runs.
CREATE TABLE IF NOT EXISTS sessions (
    station_id    TEXT    NOT NULL,
    port          INTEGER NOT NULL,
    started_at    TEXT    NOT NULL,
    ended_at      TEXT    NULL,
    duration_secs INTEGER NULL,
    energy_kwh    REAL    NULL,
    PRIMARY KEY (station_id, port, started_at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_sessions_started ON sessions (started_at);
CREATE INDEX IF NOT EXISTS idx_sessions_ended ON sessions (ended_at);

-- Seconds in each status per port and hour, sessions started and energy delivered (by the hour
-- a session ended). Added to as stays close; kept for good.
CREATE TABLE IF NOT EXISTS port_hours (
    station_id       TEXT    NOT NULL,
    port             INTEGER NOT NULL,
    hour             TEXT    NOT NULL,
    free_secs        INTEGER NOT NULL DEFAULT 0,
    occupied_secs    INTEGER NOT NULL DEFAULT 0,
    fault_secs       INTEGER NOT NULL DEFAULT 0,
    offline_secs     INTEGER NOT NULL DEFAULT 0,
    reserved_secs    INTEGER NOT NULL DEFAULT 0,
    unknown_secs     INTEGER NOT NULL DEFAULT 0,
    sessions_started INTEGER NOT NULL DEFAULT 0,
    energy_kwh       REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, port, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_port_hours_hour ON port_hours (hour);

-- The same, summed over a station's ports (what a station's statistics read).
CREATE TABLE IF NOT EXISTS station_hours (
    station_id       TEXT    NOT NULL,
    hour             TEXT    NOT NULL,
    free_secs        INTEGER NOT NULL DEFAULT 0,
    occupied_secs    INTEGER NOT NULL DEFAULT 0,
    fault_secs       INTEGER NOT NULL DEFAULT 0,
    offline_secs     INTEGER NOT NULL DEFAULT 0,
    reserved_secs    INTEGER NOT NULL DEFAULT 0,
    unknown_secs     INTEGER NOT NULL DEFAULT 0,
    sessions_started INTEGER NOT NULL DEFAULT 0,
    energy_kwh       REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_station_hours_hour ON station_hours (hour);

-- The same, summed over the fleet (what the fleet's statistics read).
CREATE TABLE IF NOT EXISTS fleet_hours (
    hour             TEXT    NOT NULL PRIMARY KEY,
    free_secs        INTEGER NOT NULL DEFAULT 0,
    occupied_secs    INTEGER NOT NULL DEFAULT 0,
    fault_secs       INTEGER NOT NULL DEFAULT 0,
    offline_secs     INTEGER NOT NULL DEFAULT 0,
    reserved_secs    INTEGER NOT NULL DEFAULT 0,
    unknown_secs     INTEGER NOT NULL DEFAULT 0,
    sessions_started INTEGER NOT NULL DEFAULT 0,
    energy_kwh       REAL    NOT NULL DEFAULT 0
);

-- When csm got a station back after an outage (see StationState::counted_from).
ALTER TABLE station_health ADD COLUMN counted_from TEXT NULL;
