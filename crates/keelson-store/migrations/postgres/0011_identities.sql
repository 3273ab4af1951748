-- Identities: users with password hashes (argon2id PHC strings), service tokens stored as SHA-256
-- digests (shown once when made), and each principal's role per workspace.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE service_tokens (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    description TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires BIGINT,
    revoked BIGINT,
    last_used BIGINT
);
CREATE INDEX service_tokens_principal ON service_tokens (principal);

CREATE TABLE role_bindings (
    workspace TEXT NOT NULL,
    principal TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    granted BIGINT NOT NULL,
    granted_by TEXT NOT NULL,
    PRIMARY KEY (workspace, principal)
);
