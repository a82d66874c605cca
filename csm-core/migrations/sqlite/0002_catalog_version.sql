-- A counter bumped by every change of the station list, so readers can tell cheaply whether
-- their copy of the catalogue is current.
CREATE TABLE IF NOT EXISTS catalog_meta (
    id      INTEGER NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO catalog_meta (id, version) VALUES (1, 0);
