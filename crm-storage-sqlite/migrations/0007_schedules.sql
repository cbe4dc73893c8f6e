-- Cron schedules (crm_core::schedule; docs/jobs.md): a tenant's recurring jobs. next_run_at is
-- the occurrence a runner waits for; firing moves it only if it still holds the due value, so
-- one occurrence enqueues one job.
CREATE TABLE job_schedules (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    cron        TEXT NOT NULL,
    job_type    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    next_run_at INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX job_schedules_due ON job_schedules (next_run_at);
