-- Idempotency keys: one row per (tenant, principal, key), claimed while its request runs and
-- then holding the recorded response until it expires. Tenant data like any other: RLS forced.
CREATE TABLE idempotency_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    principal    text NOT NULL,
    key          text NOT NULL,
    fingerprint  text NOT NULL,
    token        uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    locked_until timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    response     text,
    PRIMARY KEY (tenant_id, principal, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (tenant_id, expires_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO crm_app;
