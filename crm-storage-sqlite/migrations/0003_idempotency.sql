-- Idempotency keys: one row per (tenant, principal, key), claimed while its request runs and
-- then holding the recorded response until it expires. A rowid table, not WITHOUT ROWID:
-- responses can be large.
CREATE TABLE idempotency_keys (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    principal    TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    token        BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    response     TEXT,
    PRIMARY KEY (tenant_id, principal, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (tenant_id, expires_at);
