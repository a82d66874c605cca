-- What the registry of charge points adds for OCPP 2.0.1: the version each charger speaks on its
-- last connection, its serial number, and a station-level problem it reports.
ALTER TABLE ocpp_charge_points ADD COLUMN serial TEXT NULL;
ALTER TABLE ocpp_charge_points ADD COLUMN problem TEXT NULL;
ALTER TABLE ocpp_charge_points ADD COLUMN ocpp_version TEXT NULL;
