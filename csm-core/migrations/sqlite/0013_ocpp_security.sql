-- Each OCPP charge point's security profile when above 1: 2 (TLS, with its password) or 3 (TLS
-- with its client certificate). A charge point with no row may connect as profile 1.
CREATE TABLE IF NOT EXISTS ocpp_security (
    station_id  TEXT    NOT NULL PRIMARY KEY,
    profile     INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL
);
