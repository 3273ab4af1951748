-- Per-resource permissions, as MLflow grants them: a principal's READ, USE, EDIT or MANAGE on one
-- experiment, registered model or prompt (`resource_id`), or on every one of its type (`*`).
-- Kept in each workspace's own database, so they go with the workspace.
CREATE TABLE resource_grants (
    principal TEXT NOT NULL,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('experiment', 'registered_model', 'prompt')),
    resource_id TEXT NOT NULL,
    permission TEXT NOT NULL CHECK (permission IN ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS')),
    granted BIGINT NOT NULL,
    granted_by TEXT NOT NULL,
    PRIMARY KEY (principal, resource_type, resource_id)
);
CREATE INDEX resource_grants_resource ON resource_grants (resource_type, resource_id);
