-- Tasks: the first kind built on the record descriptions (crm_core::kind::TASK). Columns follow
-- the description: meta columns, one per field, custom fields, search words.
CREATE TABLE tasks (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    id            BLOB NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    title         TEXT NOT NULL,
    description   TEXT,
    due_at        INTEGER,
    priority      TEXT NOT NULL,
    status        TEXT NOT NULL,
    assignee_id   BLOB REFERENCES users (id),
    lead_id       BLOB,
    contact_id    BLOB,
    account_id    BLOB,
    deal_id       BLOB,
    completed_at  INTEGER,
    owner_id      BLOB REFERENCES users (id),
    custom_fields TEXT NOT NULL,
    search_words  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    CHECK ((lead_id IS NOT NULL) + (contact_id IS NOT NULL) + (account_id IS NOT NULL) + (deal_id IS NOT NULL) <= 1)
);
CREATE INDEX tasks_live ON tasks (tenant_id, id) WHERE deleted_at IS NULL;
-- Sorted by due time (nulls last either way) and by creation time.
CREATE INDEX tasks_due ON tasks (tenant_id, due_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_created ON tasks (tenant_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_assignee ON tasks (tenant_id, assignee_id, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner ON tasks (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
-- A record's timeline reads its tasks newest first.
CREATE INDEX tasks_lead ON tasks (tenant_id, lead_id, created_at, id) WHERE deleted_at IS NULL AND lead_id IS NOT NULL;
CREATE INDEX tasks_contact ON tasks (tenant_id, contact_id, created_at, id) WHERE deleted_at IS NULL AND contact_id IS NOT NULL;
CREATE INDEX tasks_account ON tasks (tenant_id, account_id, created_at, id) WHERE deleted_at IS NULL AND account_id IS NOT NULL;
CREATE INDEX tasks_deal ON tasks (tenant_id, deal_id, created_at, id) WHERE deleted_at IS NULL AND deal_id IS NOT NULL;

-- Search on the title, through search_terms like every searchable kind (see 0004).
CREATE TRIGGER tasks_terms_added AFTER INSERT ON tasks BEGIN
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'task', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER tasks_terms_changed AFTER UPDATE OF search_words ON tasks
WHEN old.search_words IS NOT new.search_words BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'task' AND record_id = old.id
        AND word IN (SELECT substr(value, 1, 64) FROM json_each('["' || replace(old.search_words, ' ', '","') || '"]'));
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'task', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER tasks_terms_removed AFTER DELETE ON tasks BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'task' AND record_id = old.id;
END;
