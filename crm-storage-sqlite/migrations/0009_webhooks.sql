-- Webhook endpoints (crm_core::kind::WEBHOOK; docs/webhooks.md): a record kind, columns in the
-- description's order. The secrets are kept as their owner was shown them (`whsec_…`): signing
-- needs the key itself, so it cannot be hashed; no JSON form of the record carries them.
CREATE TABLE webhooks (
    tenant_id                  BLOB NOT NULL REFERENCES tenants (id),
    id                         BLOB NOT NULL,
    version                    INTEGER NOT NULL,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    deleted_at                 INTEGER,
    url                        TEXT NOT NULL,
    event_types                TEXT NOT NULL,
    description                TEXT,
    enabled                    INTEGER NOT NULL,
    disabled_reason            TEXT,
    failing_since              INTEGER,
    created_by                 BLOB REFERENCES users (id),
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX webhooks_live ON webhooks (tenant_id, id) WHERE deleted_at IS NULL;
