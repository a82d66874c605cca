-- Each charger's message log, when CSM_OCPP_LOG_DATABASE keeps it in the database too: every
-- frame both ways (id tags masked), the instance that held the charger, kept
-- CSM_RETAIN_OCPP_LOG_DAYS.
CREATE TABLE IF NOT EXISTS ocpp_messages (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    station_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    instance    VARCHAR(128) NOT NULL,
    at          DATETIME(6)  NOT NULL,
    direction   VARCHAR(8)   NOT NULL,
    connection  BIGINT       NOT NULL,
    action      VARCHAR(64)  NULL,
    frame       MEDIUMTEXT   NOT NULL,
    PRIMARY KEY (id),
    KEY idx_ocpp_messages_station (station_id, id),
    KEY idx_ocpp_messages_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
