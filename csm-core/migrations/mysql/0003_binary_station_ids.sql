-- Station ids are compared byte for byte, as everywhere else in csm (and in SQLite): under the
-- database's case-insensitive collation `S1` and `s1` were one row, and ids sorted differently
-- than on SQLite. Ids are ASCII (csm refuses anything else), so `ascii_bin` keeps every id as it
-- is; it also makes each key comparison a plain byte comparison.
ALTER TABLE stations MODIFY id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
ALTER TABLE port_states MODIFY station_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
ALTER TABLE station_health MODIFY station_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
ALTER TABLE status_events MODIFY station_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
