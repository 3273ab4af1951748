-- The model catalog: entries synced from catalog files (one source owns each id), the scores
-- Keelson evaluations recorded for them, and a log of syncs with what each changed.
CREATE TABLE catalog_models (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    entry TEXT NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'removed')),
    first_seen BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX catalog_models_source ON catalog_models (source);

CREATE TABLE catalog_scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id TEXT NOT NULL REFERENCES catalog_models (id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    evaluation TEXT,
    score_time BIGINT NOT NULL
);
CREATE INDEX catalog_scores_model ON catalog_scores (model_id, metric, id);

CREATE TABLE catalog_syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    location TEXT NOT NULL,
    sync_time BIGINT NOT NULL,
    report TEXT NOT NULL
);
