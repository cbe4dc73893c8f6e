-- Retention (RetentionStore::purge; docs/jobs.md): runners delete finished jobs, expired refresh
-- tokens and expired idempotency keys across tenants, oldest first, in bounded batches, as
-- crm_worker. These indexes let each batch start at its oldest row instead of scanning.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('succeeded', 'cancelled');
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX idempotency_keys_expired ON idempotency_keys (expires_at);

-- crm_worker already sees every job; now it may delete them too.
GRANT DELETE ON jobs TO crm_worker;

-- For tokens and keys, crm_worker may read only the columns that say which row and when it
-- expires — never a secret hash, a user or a recorded response — and delete rows. Which rows
-- have expired is the caller's clock's to say (core's clock may be injected), so the policy
-- admits every row and the column grants are the wall: no secret is readable, nothing writable.
CREATE POLICY purge ON refresh_tokens TO crm_worker USING (true);
GRANT SELECT (tenant_id, id, expires_at) ON refresh_tokens TO crm_worker;
GRANT DELETE ON refresh_tokens TO crm_worker;
CREATE POLICY purge ON idempotency_keys TO crm_worker USING (true);
GRANT SELECT (tenant_id, principal, key, locked_until, expires_at) ON idempotency_keys TO crm_worker;
GRANT DELETE ON idempotency_keys TO crm_worker;
