-- Background jobs (crm_core::job; docs/jobs.md). A job belongs to a tenant; workers claim across
-- tenants, the tenant whose last claim is oldest first (job_tenants.last_claim, a counter, so
-- the order does not depend on clocks). A rowid table: payloads reach 64 KiB.
CREATE TABLE jobs (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    job_type     TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    unique_key   TEXT,
    lease_until  INTEGER,
    lease_token  BLOB,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- Unique jobs by a constraint: one unfinished job per (tenant, key).
CREATE UNIQUE INDEX jobs_unique ON jobs (tenant_id, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
CREATE INDEX jobs_due ON jobs (tenant_id, run_at, id) WHERE state = 'pending';
CREATE INDEX jobs_leased ON jobs (tenant_id, lease_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_lease_token ON jobs (lease_token) WHERE lease_token IS NOT NULL;

CREATE TABLE job_tenants (
    tenant_id  BLOB PRIMARY KEY REFERENCES tenants (id),
    last_claim INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX job_tenants_turn ON job_tenants (last_claim, tenant_id);
