-- Tasks: the first kind built on the record descriptions (crm_core::kind::TASK). Columns follow
-- the description: meta columns, one per field, custom fields, search words.
CREATE TABLE tasks (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    title         text NOT NULL,
    description   text,
    due_at        timestamptz,
    priority      text NOT NULL,
    status        text NOT NULL,
    assignee_id   uuid REFERENCES users (id),
    lead_id       uuid,
    contact_id    uuid,
    account_id    uuid,
    deal_id       uuid,
    completed_at  timestamptz,
    owner_id      uuid REFERENCES users (id),
    custom_fields jsonb NOT NULL,
    search_words  text NOT NULL,
    search        tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_words, ' '))) STORED,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    CHECK (num_nonnulls(lead_id, contact_id, account_id, deal_id) <= 1)
);
CREATE INDEX tasks_live ON tasks (tenant_id, id) WHERE deleted_at IS NULL;
-- Sorted by due time (B-tree ascending keeps NULLs last; descending scans read them first, so
-- the index serves `due_at` ascending, the common order) and by creation time.
CREATE INDEX tasks_due ON tasks (tenant_id, due_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_created ON tasks (tenant_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_assignee ON tasks (tenant_id, assignee_id, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner ON tasks (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
-- A record's timeline reads its tasks newest first.
CREATE INDEX tasks_lead ON tasks (tenant_id, lead_id, created_at, id) WHERE deleted_at IS NULL AND lead_id IS NOT NULL;
CREATE INDEX tasks_contact ON tasks (tenant_id, contact_id, created_at, id) WHERE deleted_at IS NULL AND contact_id IS NOT NULL;
CREATE INDEX tasks_account ON tasks (tenant_id, account_id, created_at, id) WHERE deleted_at IS NULL AND account_id IS NOT NULL;
CREATE INDEX tasks_deal ON tasks (tenant_id, deal_id, created_at, id) WHERE deleted_at IS NULL AND deal_id IS NOT NULL;

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasks
    USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON tasks TO crm_app;

-- Search on the title, through search_terms like every searchable kind (see 0004).
CREATE TRIGGER tasks_terms_added AFTER INSERT ON tasks REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION crm_search_terms_added('task');
CREATE TRIGGER tasks_terms_changed AFTER UPDATE OF search_words ON tasks FOR EACH ROW
    WHEN (OLD.search_words IS DISTINCT FROM NEW.search_words)
    EXECUTE FUNCTION crm_search_terms_changed('task');
CREATE TRIGGER tasks_terms_removed AFTER DELETE ON tasks FOR EACH ROW
    EXECUTE FUNCTION crm_search_terms_removed('task');
