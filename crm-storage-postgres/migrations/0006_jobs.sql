-- Background jobs (crm_core::job; docs/jobs.md). A job belongs to a tenant: the application
-- role sees its tenant's jobs only, like any tenant table. Workers claim across tenants as
-- crm_worker, a second role whose policy admits every row of these two tables and nothing
-- else; job_tenants.last_claim (a counter, not a clock) orders the tenants' turns.

DO $$
BEGIN
    CREATE ROLE crm_worker NOLOGIN NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide: created by another database or a concurrent migration
END
$$;

CREATE TABLE jobs (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    id           uuid NOT NULL,
    job_type     text NOT NULL,
    payload      jsonb NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    run_at       timestamptz NOT NULL,
    unique_key   text,
    lease_until  timestamptz,
    lease_token  uuid,
    last_error   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- Unique jobs by a constraint: one unfinished job per (tenant, key).
CREATE UNIQUE INDEX jobs_unique ON jobs (tenant_id, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
CREATE INDEX jobs_due ON jobs (tenant_id, run_at, id) WHERE state = 'pending';
CREATE INDEX jobs_leased ON jobs (tenant_id, lease_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_lease_token ON jobs (lease_token) WHERE lease_token IS NOT NULL;

CREATE TABLE job_tenants (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    last_claim bigint NOT NULL DEFAULT 0
);
CREATE INDEX job_tenants_turn ON job_tenants (last_claim, tenant_id);
CREATE SEQUENCE job_claims;

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobs TO crm_app
    USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
CREATE POLICY workers ON jobs TO crm_worker USING (true) WITH CHECK (true);
ALTER TABLE job_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON job_tenants TO crm_app
    USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
CREATE POLICY workers ON job_tenants TO crm_worker USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE ON jobs TO crm_app, crm_worker;
GRANT SELECT, INSERT ON job_tenants TO crm_app;
GRANT SELECT, UPDATE ON job_tenants TO crm_worker;
GRANT USAGE ON SEQUENCE job_claims TO crm_worker;
DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO crm_worker', current_schema()); END $$;
