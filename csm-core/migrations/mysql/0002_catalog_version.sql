-- A counter bumped by every change of the station list, so readers can tell cheaply whether
-- their copy of the catalogue is current.
CREATE TABLE IF NOT EXISTS catalog_meta (
    id      TINYINT UNSIGNED NOT NULL,
    version BIGINT UNSIGNED  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
INSERT IGNORE INTO catalog_meta (id, version) VALUES (1, 0);
