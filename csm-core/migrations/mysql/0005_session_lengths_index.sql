-- The fleet's recent session lengths (estimates and statistics) are read newest first by start:
-- an index that holds the length too answers from the index alone, without a lookup per row.
ALTER TABLE sessions DROP INDEX idx_sessions_started, ADD INDEX idx_sessions_started (started_at, duration_secs);
