-- Workspaces other than `default`, which always exists and is not listed here. Each one's
-- resources live in a database of their own (a SQLite file beside this one, or a PostgreSQL
-- schema), so this table is read only in the default workspace's database.
CREATE TABLE workspaces (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
