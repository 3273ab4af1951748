-- The secret store: values encrypted by the server (XChaCha20-Poly1305, the name as associated
-- data) under the key named by key_id; the database never sees a plain value.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- The audit log: one row per mutating call, append-only, each row's hash covering the row and
-- the hash before it, so an edited or deleted row breaks the chain.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_time BIGINT NOT NULL,
    principal TEXT NOT NULL,
    workspace TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    status INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    request_digest TEXT NOT NULL,
    response_digest TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_principal ON audit_log (principal, seq);
CREATE INDEX audit_log_time ON audit_log (event_time);
