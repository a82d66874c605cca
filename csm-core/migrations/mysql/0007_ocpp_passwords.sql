-- OCPP charge point passwords (security profile 1), only as salted hashes.
CREATE TABLE IF NOT EXISTS ocpp_passwords (
    station_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    hash        VARCHAR(255) NOT NULL,
    updated_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (station_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
