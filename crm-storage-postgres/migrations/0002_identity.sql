-- Schema v2: identity. Secrets are stored only as SHA-256 hashes; passwords as Argon2id PHC strings.

CREATE TABLE credentials (
    user_id       uuid PRIMARY KEY REFERENCES users (id),
    password_hash text NOT NULL,
    version       bigint NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE refresh_tokens (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id),
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    version     bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);

CREATE TABLE api_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    id           uuid NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL,
    secret_hash  text NOT NULL,
    created_by   uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    use_count    bigint NOT NULL,
    revoked_at   timestamptz,
    version      bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE login_failures (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    key       text NOT NULL,
    count     bigint NOT NULL,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['refresh_tokens', 'api_keys', 'login_failures'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = crm_current_tenant()) '
            'WITH CHECK (tenant_id = crm_current_tenant())', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON credentials, refresh_tokens, api_keys TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON login_failures TO crm_app;
