-- OCPP charge point passwords (security profile 1), only as salted hashes.
CREATE TABLE IF NOT EXISTS ocpp_passwords (
    station_id  TEXT NOT NULL PRIMARY KEY,
    hash        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
