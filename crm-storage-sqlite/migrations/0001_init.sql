-- Schema v1. Every tenant-owned table has primary key (tenant_id, id) and every reference
-- between tenant-owned tables includes tenant_id, so no row can point into another tenant.
-- Ids are 16-byte UUID blobs; times are integer microseconds since the Unix epoch (UTC).

CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id          BLOB PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE memberships (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    user_id     BLOB NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) WITHOUT ROWID;

CREATE TABLE pipelines (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    name        TEXT NOT NULL,
    is_default  INTEGER NOT NULL,
    stages      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

CREATE TABLE accounts (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    id            BLOB NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    name          TEXT NOT NULL,
    domain        TEXT,
    industry      TEXT,
    owner_id      BLOB REFERENCES users (id),
    custom_fields TEXT NOT NULL,
    search_words  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX accounts_live ON accounts (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX accounts_owner ON accounts (tenant_id, owner_id, id) WHERE deleted_at IS NULL;

CREATE TABLE contacts (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    id            BLOB NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    first_name    TEXT,
    last_name     TEXT,
    email         TEXT,
    phone         TEXT,
    title         TEXT,
    account_id    BLOB,
    owner_id      BLOB REFERENCES users (id),
    custom_fields TEXT NOT NULL,
    search_words  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
CREATE INDEX contacts_live ON contacts (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_owner ON contacts (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_account ON contacts (tenant_id, account_id, id) WHERE deleted_at IS NULL;

CREATE TABLE leads (
    tenant_id            BLOB NOT NULL REFERENCES tenants (id),
    id                   BLOB NOT NULL,
    version              INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    deleted_at           INTEGER,
    first_name           TEXT,
    last_name            TEXT,
    email                TEXT,
    phone                TEXT,
    company              TEXT,
    title                TEXT,
    source               TEXT,
    status               TEXT NOT NULL,
    owner_id             BLOB REFERENCES users (id),
    converted_contact_id BLOB,
    custom_fields        TEXT NOT NULL,
    search_words  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, converted_contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX leads_live ON leads (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX leads_status ON leads (tenant_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX leads_owner ON leads (tenant_id, owner_id, id) WHERE deleted_at IS NULL;

CREATE TABLE deals (
    tenant_id           BLOB NOT NULL REFERENCES tenants (id),
    id                  BLOB NOT NULL,
    version             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER,
    name                TEXT NOT NULL,
    amount_minor        INTEGER,
    currency            TEXT,
    pipeline_id         BLOB NOT NULL,
    stage               TEXT NOT NULL,
    expected_close_date TEXT,
    probability         INTEGER,
    account_id          BLOB,
    contact_id          BLOB,
    owner_id            BLOB REFERENCES users (id),
    closed_at           INTEGER,
    custom_fields       TEXT NOT NULL,
    search_words  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    CHECK ((amount_minor IS NULL) = (currency IS NULL))
);
CREATE INDEX deals_live ON deals (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_stage ON deals (tenant_id, pipeline_id, stage, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_owner ON deals (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_account ON deals (tenant_id, account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_contact ON deals (tenant_id, contact_id, id) WHERE deleted_at IS NULL;

CREATE TABLE activities (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    kind        TEXT NOT NULL,
    subject     TEXT,
    body        TEXT,
    occurred_at INTEGER NOT NULL,
    lead_id     BLOB,
    contact_id  BLOB,
    account_id  BLOB,
    deal_id     BLOB,
    owner_id    BLOB REFERENCES users (id),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    CHECK ((lead_id IS NOT NULL) + (contact_id IS NOT NULL) + (account_id IS NOT NULL) + (deal_id IS NOT NULL) = 1)
);
CREATE INDEX activities_live ON activities (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX activities_owner ON activities (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX activities_lead ON activities (tenant_id, lead_id, occurred_at, id) WHERE deleted_at IS NULL AND lead_id IS NOT NULL;
CREATE INDEX activities_contact ON activities (tenant_id, contact_id, occurred_at, id) WHERE deleted_at IS NULL AND contact_id IS NOT NULL;
CREATE INDEX activities_account ON activities (tenant_id, account_id, occurred_at, id) WHERE deleted_at IS NULL AND account_id IS NOT NULL;
CREATE INDEX activities_deal ON activities (tenant_id, deal_id, occurred_at, id) WHERE deleted_at IS NULL AND deal_id IS NOT NULL;

CREATE TABLE deal_stage_changes (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    deal_id     BLOB NOT NULL,
    pipeline_id BLOB NOT NULL,
    from_stage  TEXT,
    to_stage    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX deal_stage_changes_deal ON deal_stage_changes (tenant_id, deal_id, at, id);

-- Append-only: the store never updates or deletes audit rows.
CREATE TABLE audit_log (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    resource_id BLOB NOT NULL,
    changes     TEXT NOT NULL,
    request_id  TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX audit_log_time ON audit_log (tenant_id, at, id);
CREATE INDEX audit_log_resource ON audit_log (tenant_id, resource_id, at, id);
CREATE INDEX audit_log_actor ON audit_log (tenant_id, actor, at, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE outbox (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    name         TEXT NOT NULL,
    resource     TEXT NOT NULL,
    resource_id  BLOB NOT NULL,
    actor        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    at           INTEGER NOT NULL,
    processed_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX outbox_pending ON outbox (at, id) WHERE processed_at IS NULL;

-- Text search: word-prefix search over `search_words`, which the store fills with
-- crm_core's normalized words of the record's names, e-mail and company (so every store agrees
-- on what matches). The `ascii` tokenizer splits only at ASCII non-alphanumerics (here: the
-- spaces between words) and keeps every other character, so words are indexed as core made them. Rows are found through the FTS index, then confined to the tenant by the join.
CREATE VIRTUAL TABLE leads_fts USING fts5 (
    search_words, content = 'leads', content_rowid = 'rowid', tokenize = 'ascii'
);
CREATE TRIGGER leads_fts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;
CREATE TRIGGER leads_fts_delete AFTER DELETE ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
END;
CREATE TRIGGER leads_fts_update AFTER UPDATE OF search_words ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
    INSERT INTO leads_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;

CREATE VIRTUAL TABLE contacts_fts USING fts5 (
    search_words, content = 'contacts', content_rowid = 'rowid', tokenize = 'ascii'
);
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF search_words ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
    INSERT INTO contacts_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;

CREATE VIRTUAL TABLE accounts_fts USING fts5 (
    search_words, content = 'accounts', content_rowid = 'rowid', tokenize = 'ascii'
);
CREATE TRIGGER accounts_fts_insert AFTER INSERT ON accounts BEGIN
    INSERT INTO accounts_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;
CREATE TRIGGER accounts_fts_delete AFTER DELETE ON accounts BEGIN
    INSERT INTO accounts_fts (accounts_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
END;
CREATE TRIGGER accounts_fts_update AFTER UPDATE OF search_words ON accounts BEGIN
    INSERT INTO accounts_fts (accounts_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
    INSERT INTO accounts_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;

CREATE VIRTUAL TABLE deals_fts USING fts5 (
    search_words, content = 'deals', content_rowid = 'rowid', tokenize = 'ascii'
);
CREATE TRIGGER deals_fts_insert AFTER INSERT ON deals BEGIN
    INSERT INTO deals_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;
CREATE TRIGGER deals_fts_delete AFTER DELETE ON deals BEGIN
    INSERT INTO deals_fts (deals_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
END;
CREATE TRIGGER deals_fts_update AFTER UPDATE OF search_words ON deals BEGIN
    INSERT INTO deals_fts (deals_fts, rowid, search_words) VALUES ('delete', old.rowid, old.search_words);
    INSERT INTO deals_fts (rowid, search_words) VALUES (new.rowid, new.search_words);
END;
