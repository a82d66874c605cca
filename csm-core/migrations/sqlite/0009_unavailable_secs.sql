-- Seconds a port was taken out of service by the operator (status `unavailable`): not a
-- fault, and not counted against availability.
ALTER TABLE port_hours ADD COLUMN unavailable_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE station_hours ADD COLUMN unavailable_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fleet_hours ADD COLUMN unavailable_secs INTEGER NOT NULL DEFAULT 0;
