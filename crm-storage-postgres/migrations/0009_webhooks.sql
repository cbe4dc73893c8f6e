-- Webhook endpoints (crm_core::kind::WEBHOOK; docs/webhooks.md): a record kind, columns in the
-- description's order. The secrets are kept as their owner was shown them (`whsec_…`): signing
-- needs the key itself, so it cannot be hashed; no JSON form of the record carries them.
CREATE TABLE webhooks (
    tenant_id                  uuid NOT NULL REFERENCES tenants (id),
    id                         uuid NOT NULL,
    version                    bigint NOT NULL,
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL,
    deleted_at                 timestamptz,
    url                        text NOT NULL,
    event_types                jsonb NOT NULL,
    description                text,
    enabled                    boolean NOT NULL,
    disabled_reason            text,
    failing_since              timestamptz,
    created_by                 uuid REFERENCES users (id),
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhooks_live ON webhooks (tenant_id, id) WHERE deleted_at IS NULL;

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhooks
    USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON webhooks TO crm_app;
