-- What the registry of charge points adds for OCPP 2.0.1: the version each charger speaks on its
-- last connection, its serial number, and a station-level problem it reports.
ALTER TABLE ocpp_charge_points
    ADD COLUMN serial       VARCHAR(255) NULL,
    ADD COLUMN problem      VARCHAR(255) NULL,
    ADD COLUMN ocpp_version VARCHAR(8)   NULL;
