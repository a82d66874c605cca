-- The registry of OCPP charge points: each one's connection and what it said of itself, written
-- by the server that serves it (`csm-cli ocpp status`, GET /api/ocpp/charge-points).
CREATE TABLE IF NOT EXISTS ocpp_charge_points (
    station_id       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    connected        BOOLEAN      NOT NULL,
    connected_at     DATETIME(6)  NULL,
    disconnected_at  DATETIME(6)  NULL,
    last_message_at  DATETIME(6)  NULL,
    last_action      VARCHAR(64)  NULL,
    vendor           VARCHAR(255) NULL,
    model            VARCHAR(255) NULL,
    firmware         VARCHAR(255) NULL,
    firmware_status  VARCHAR(64)  NULL,
    heartbeat_secs   INT UNSIGNED NOT NULL,
    PRIMARY KEY (station_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
