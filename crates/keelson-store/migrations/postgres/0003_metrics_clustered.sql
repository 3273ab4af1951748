-- SQLite rebuilds its metric history as a clustered table in this version. PostgreSQL tables are
-- heaps with the primary key as a separate index either way, so nothing changes here; the version
-- exists so both backends share one numbering.
SELECT 1;
