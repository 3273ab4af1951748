-- Model registry (MLflow's model_registry.proto) plus Keelson's promotion policies, approvals
-- and the alias history that makes rollback possible. Renames cascade through every table that
-- names the model.
CREATE TABLE registered_models (
    name TEXT PRIMARY KEY,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT,
    user_id TEXT
);

CREATE TABLE registered_model_tags (
    name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);

-- A deleted version keeps its row (stage 'Deleted_Internal', MLflow's convention) so that its
-- number is never handed out again.
CREATE TABLE model_versions (
    name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    version BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT,
    user_id TEXT,
    current_stage TEXT NOT NULL DEFAULT 'None',
    source TEXT NOT NULL,
    storage_location TEXT,
    run_id TEXT,
    run_link TEXT,
    status TEXT NOT NULL DEFAULT 'READY',
    status_message TEXT,
    model_id TEXT,
    -- The metrics the version's run and logged model had when it was registered (JSON object),
    -- for lineage: later logging to the run does not rewrite what was known at registration.
    registration_metrics TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_run ON model_versions (run_id);

CREATE TABLE model_version_tags (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
);

CREATE TABLE registered_model_aliases (
    name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (name, alias)
);

-- Every alias move, in order: the audit trail and the source of rollbacks. Kept when the model
-- is deleted (an audit outlives its subject); renamed with it by the registry.
CREATE TABLE alias_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version BIGINT,
    to_version BIGINT,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_time BIGINT NOT NULL
);
CREATE INDEX alias_events_name_alias ON alias_events (name, alias, id);

CREATE TABLE promotion_policies (
    name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    alias TEXT NOT NULL,
    policy TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_time BIGINT NOT NULL,
    PRIMARY KEY (name, alias)
);

CREATE TABLE model_version_approvals (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    alias TEXT NOT NULL,
    approver TEXT NOT NULL,
    roles TEXT NOT NULL,
    comment TEXT,
    approval_time BIGINT NOT NULL,
    PRIMARY KEY (name, version, alias, approver),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
