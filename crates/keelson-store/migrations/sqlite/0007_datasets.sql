-- Versioned datasets: a dataset holds numbered versions (content-addressed by digest, so the same
-- content registers once), the versions each one was derived from, and every validation run
-- against a version, which together make the dataset's quality trend. `next_version` hands out
-- numbers so that none is ever reused, even if versions were deleted.
-- `datasets` is taken by MLflow tracking's run inputs (migration 2), hence `versioned_datasets`.
CREATE TABLE versioned_datasets (
    name TEXT PRIMARY KEY,
    description TEXT,
    tags TEXT NOT NULL,
    pii_columns TEXT NOT NULL,
    next_version BIGINT NOT NULL DEFAULT 1,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE dataset_versions (
    dataset TEXT NOT NULL REFERENCES versioned_datasets (name) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    layer TEXT NOT NULL CHECK (layer IN ('bronze', 'silver', 'gold')),
    artifact_key TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    schema_json TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    source_json TEXT NOT NULL,
    recipe_digest TEXT,
    validation_json TEXT,
    quality_score DOUBLE PRECISION,
    masked_columns TEXT NOT NULL,
    created BIGINT NOT NULL,
    created_by TEXT,
    PRIMARY KEY (dataset, version),
    UNIQUE (dataset, digest)
);
CREATE INDEX dataset_versions_layer ON dataset_versions (dataset, layer, version);

-- Inputs keep the order the transform listed them in.
CREATE TABLE dataset_version_inputs (
    dataset TEXT NOT NULL,
    version BIGINT NOT NULL,
    position BIGINT NOT NULL,
    input_dataset TEXT NOT NULL,
    input_version BIGINT NOT NULL,
    PRIMARY KEY (dataset, version, position),
    UNIQUE (dataset, version, input_dataset, input_version),
    FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version) ON DELETE CASCADE,
    FOREIGN KEY (input_dataset, input_version) REFERENCES dataset_versions (dataset, version)
);
-- Finds the consumers of a version (downstream lineage).
CREATE INDEX dataset_version_inputs_input ON dataset_version_inputs (input_dataset, input_version);

CREATE TABLE dataset_validations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    version BIGINT NOT NULL,
    suite_digest TEXT NOT NULL,
    result TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    success BIGINT NOT NULL CHECK (success IN (0, 1)),
    validated_at BIGINT NOT NULL,
    FOREIGN KEY (dataset, version) REFERENCES dataset_versions (dataset, version) ON DELETE CASCADE
);
CREATE INDEX dataset_validations_dataset ON dataset_validations (dataset, id);
