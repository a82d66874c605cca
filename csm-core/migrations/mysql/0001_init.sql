-- Stations, current port state, station health and the history of status events.
-- utf8mb4 throughout: station names and vendor messages are Chinese.

CREATE TABLE IF NOT EXISTS stations (
    id          VARCHAR(64)  NOT NULL,
    name        VARCHAR(200) NOT NULL,
    address     VARCHAR(500) NULL,
    lat         DOUBLE       NULL,
    lng         DOUBLE       NULL,
    vendor      VARCHAR(64)  NOT NULL,
    enabled     BOOLEAN      NOT NULL DEFAULT TRUE,
    port_count  INT UNSIGNED NOT NULL DEFAULT 0,
    created_at  DATETIME(6)  NOT NULL,
    updated_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY idx_stations_vendor (vendor)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per port: the latest durable state. Lookups are by station (primary key prefix).
CREATE TABLE IF NOT EXISTS port_states (
    station_id      VARCHAR(64)  NOT NULL,
    port            INT UNSIGNED NOT NULL,
    status          VARCHAR(16)  NOT NULL,
    raw_code        VARCHAR(64)  NULL,
    voltage         DOUBLE       NULL,
    current         DOUBLE       NULL,
    power           DOUBLE       NULL,
    energy_kwh      DOUBLE       NULL,
    session_ends_at DATETIME(6)  NULL,
    since           DATETIME(6)  NOT NULL,
    observed_at     DATETIME(6)  NOT NULL,
    PRIMARY KEY (station_id, port)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS station_health (
    station_id  VARCHAR(64)   NOT NULL,
    last_ok_at  DATETIME(6)   NULL,
    last_error  VARCHAR(1000) NULL,
    checked_at  DATETIME(6)   NOT NULL,
    failures    INT UNSIGNED  NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- History. The unique key serves lookups by station, by station and port, and by station, port
-- and time, and makes a retried batch harmless (INSERT IGNORE). idx_status_events_at serves
-- fleet-wide time ranges.
CREATE TABLE IF NOT EXISTS status_events (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    station_id  VARCHAR(64)  NOT NULL,
    port        INT UNSIGNED NOT NULL,
    old_status  VARCHAR(16)  NULL,
    new_status  VARCHAR(16)  NOT NULL,
    at          DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_status_events_station_port_at (station_id, port, at),
    KEY idx_status_events_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
