-- Each OCPP charge point's security profile when above 1: 2 (TLS, with its password) or 3 (TLS
-- with its client certificate). A charge point with no row may connect as profile 1.
CREATE TABLE IF NOT EXISTS ocpp_security (
    station_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    profile     TINYINT UNSIGNED NOT NULL,
    updated_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (station_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
