-- Online endpoints: each holds deployments (a model version with its runtime settings) and a
-- configuration (traffic split, mirror, sticky routing key). Every configuration change is
-- logged with the configuration before and after, which is what rollback restores.
CREATE TABLE serving_endpoints (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    config TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE serving_deployments (
    endpoint TEXT NOT NULL REFERENCES serving_endpoints (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (endpoint, name)
);
CREATE INDEX serving_deployments_model ON serving_deployments (model_name, model_version);

CREATE TABLE serving_config_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL REFERENCES serving_endpoints (name) ON DELETE CASCADE,
    before_config TEXT NOT NULL,
    after_config TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_time BIGINT NOT NULL
);
CREATE INDEX serving_config_events_endpoint ON serving_config_events (endpoint, id);

-- Progressive rollouts (canary analysis): the spec and the controller's state, which holds
-- every step taken. At most one rollout per endpoint progresses at a time.
CREATE TABLE serving_rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL REFERENCES serving_endpoints (name) ON DELETE CASCADE,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX serving_rollouts_endpoint ON serving_rollouts (endpoint, id);
CREATE INDEX serving_rollouts_status ON serving_rollouts (status);
