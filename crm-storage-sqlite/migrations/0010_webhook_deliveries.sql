-- Webhook deliveries and their attempts (crm_core::delivery; docs/webhooks.md). A delivery is
-- written with the event it carries; a lane (endpoint, record) is served in id order, so the
-- pending deliveries of a lane are indexed for "is an earlier one still pending?".
CREATE TABLE webhook_deliveries (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    id              BLOB NOT NULL,
    webhook_id      BLOB NOT NULL,
    event_id        BLOB NOT NULL,
    event_type      TEXT NOT NULL,
    lane            BLOB NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id)
);
CREATE INDEX webhook_deliveries_lane ON webhook_deliveries (tenant_id, webhook_id, lane, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, webhook_id, id);

CREATE TABLE webhook_attempts (
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    delivery_id      BLOB NOT NULL,
    number           INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    status           INTEGER,
    duration_ms      INTEGER NOT NULL,
    response_excerpt TEXT,
    error            TEXT,
    PRIMARY KEY (tenant_id, delivery_id, number),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id)
) WITHOUT ROWID;
