-- Retention (RetentionStore::purge; docs/jobs.md): runners delete finished jobs, expired refresh
-- tokens and expired idempotency keys across tenants, oldest first, in bounded batches. These
-- indexes let each batch start at its oldest row instead of scanning the table.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('succeeded', 'cancelled');
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX idempotency_keys_expired ON idempotency_keys (expires_at);
