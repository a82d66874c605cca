-- History beyond status events: readings over time (compressed: stored on a status change,
-- beyond a deadband, or after a heartbeat), charging sessions, and hourly roll-ups of the time
-- each port spent in each status. Statistics read roll-ups and sessions, never raw readings.
-- Hours are UTC hour starts; weekdays and local hours are counted when reading.

CREATE TABLE IF NOT EXISTS port_readings (
    station_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    port        INT UNSIGNED NOT NULL,
    at          DATETIME(6)  NOT NULL,
    status      VARCHAR(16)  NOT NULL,
    voltage     DOUBLE       NULL,
    current     DOUBLE       NULL,
    power       DOUBLE       NULL,
    energy_kwh  DOUBLE       NULL,
    PRIMARY KEY (station_id, port, at),
    KEY idx_port_readings_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A port's stay in `occupied`. `ended_at` is NULL while it runs.
CREATE TABLE IF NOT EXISTS sessions (
    station_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    port          INT UNSIGNED NOT NULL,
    started_at    DATETIME(6)  NOT NULL,
    ended_at      DATETIME(6)  NULL,
    duration_secs INT          NULL,
    energy_kwh    DOUBLE       NULL,
    PRIMARY KEY (station_id, port, started_at),
    KEY idx_sessions_started (started_at),
    KEY idx_sessions_ended (ended_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Seconds in each status per port and hour, sessions started and energy delivered (by the hour
-- a session ended). Added to as stays close; kept for good.
CREATE TABLE IF NOT EXISTS port_hours (
    station_id       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    port             INT UNSIGNED NOT NULL,
    hour             DATETIME     NOT NULL,
    free_secs        INT UNSIGNED NOT NULL DEFAULT 0,
    occupied_secs    INT UNSIGNED NOT NULL DEFAULT 0,
    fault_secs       INT UNSIGNED NOT NULL DEFAULT 0,
    offline_secs     INT UNSIGNED NOT NULL DEFAULT 0,
    reserved_secs    INT UNSIGNED NOT NULL DEFAULT 0,
    unknown_secs     INT UNSIGNED NOT NULL DEFAULT 0,
    sessions_started INT UNSIGNED NOT NULL DEFAULT 0,
    energy_kwh       DOUBLE       NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, port, hour),
    KEY idx_port_hours_hour (hour)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The same, summed over a station's ports (what a station's statistics read).
CREATE TABLE IF NOT EXISTS station_hours (
    station_id       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    hour             DATETIME     NOT NULL,
    free_secs        BIGINT UNSIGNED NOT NULL DEFAULT 0,
    occupied_secs    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    fault_secs       BIGINT UNSIGNED NOT NULL DEFAULT 0,
    offline_secs     BIGINT UNSIGNED NOT NULL DEFAULT 0,
    reserved_secs    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    unknown_secs     BIGINT UNSIGNED NOT NULL DEFAULT 0,
    sessions_started INT UNSIGNED NOT NULL DEFAULT 0,
    energy_kwh       DOUBLE       NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, hour),
    KEY idx_station_hours_hour (hour)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The same, summed over the fleet (what the fleet's statistics read).
CREATE TABLE IF NOT EXISTS fleet_hours (
    hour             DATETIME     NOT NULL,
    free_secs        BIGINT UNSIGNED NOT NULL DEFAULT 0,
    occupied_secs    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    fault_secs       BIGINT UNSIGNED NOT NULL DEFAULT 0,
    offline_secs     BIGINT UNSIGNED NOT NULL DEFAULT 0,
    reserved_secs    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    unknown_secs     BIGINT UNSIGNED NOT NULL DEFAULT 0,
    sessions_started INT UNSIGNED NOT NULL DEFAULT 0,
    energy_kwh       DOUBLE       NOT NULL DEFAULT 0,
    PRIMARY KEY (hour)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- When csm got a station back after an outage (see StationState::counted_from).
ALTER TABLE station_health ADD COLUMN IF NOT EXISTS counted_from DATETIME(6) NULL;
