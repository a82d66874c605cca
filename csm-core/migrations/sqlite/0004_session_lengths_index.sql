-- The fleet's recent session lengths (estimates and statistics) are read newest first by start:
-- an index that holds the length too answers from the index alone, without a lookup per row.
DROP INDEX IF EXISTS idx_sessions_started;
CREATE INDEX idx_sessions_started ON sessions (started_at, duration_secs);
