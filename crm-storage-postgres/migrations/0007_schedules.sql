-- Cron schedules (crm_core::schedule; docs/jobs.md): a tenant's recurring jobs. next_run_at is
-- the occurrence a runner waits for; firing moves it only if it still holds the due value, so
-- one occurrence enqueues one job. The application role manages its tenant's schedules;
-- crm_worker reads every tenant's and fires them (and so also inserts their tenants' turn rows).

CREATE TABLE job_schedules (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    cron        text NOT NULL,
    job_type    text NOT NULL,
    payload     jsonb NOT NULL,
    next_run_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX job_schedules_due ON job_schedules (next_run_at);

ALTER TABLE job_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON job_schedules TO crm_app
    USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
CREATE POLICY workers ON job_schedules TO crm_worker USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON job_schedules TO crm_app;
GRANT SELECT, UPDATE ON job_schedules TO crm_worker;
GRANT INSERT ON job_tenants TO crm_worker;
