-- Schema v1, run by the role that will own the tables (never by the application role).
-- Every tenant-owned table has primary key (tenant_id, id) and every reference between tenant
-- tables includes tenant_id. Search indexes hold crm_core's normalized words as lexemes as they
-- are (array_to_tsvector, no parser), so Postgres and SQLite match the same records. Row-Level Security is enabled and forced on each of them, with a
-- policy that admits only rows of the tenant set by the transaction (`app.tenant_id`).

CREATE EXTENSION IF NOT EXISTS btree_gin;

DO $$
BEGIN
    CREATE ROLE crm_app NOLOGIN NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by another database or a concurrent migration: roles are cluster-wide
END
$$;

-- The tenant a transaction acts for; NULL (no rows visible) when unset.
CREATE FUNCTION crm_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    role        text NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE pipelines (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    name        text NOT NULL,
    is_default  boolean NOT NULL,
    stages      jsonb NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE accounts (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    name          text NOT NULL,
    domain        text,
    industry      text,
    owner_id      uuid REFERENCES users (id),
    custom_fields jsonb NOT NULL,
    search_words  text NOT NULL,
    search        tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_words, ' '))) STORED,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX accounts_live ON accounts (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX accounts_owner ON accounts (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX accounts_search ON accounts USING gin (tenant_id, search);

CREATE TABLE contacts (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    first_name    text,
    last_name     text,
    email         text,
    phone         text,
    title         text,
    account_id    uuid,
    owner_id      uuid REFERENCES users (id),
    custom_fields jsonb NOT NULL,
    search_words  text NOT NULL,
    search        tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_words, ' '))) STORED,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
CREATE INDEX contacts_live ON contacts (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_owner ON contacts (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_account ON contacts (tenant_id, account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_search ON contacts USING gin (tenant_id, search);

CREATE TABLE leads (
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    id                   uuid NOT NULL,
    version              bigint NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    deleted_at           timestamptz,
    first_name           text,
    last_name            text,
    email                text,
    phone                text,
    company              text,
    title                text,
    source               text,
    status               text NOT NULL,
    owner_id             uuid REFERENCES users (id),
    converted_contact_id uuid,
    custom_fields        jsonb NOT NULL,
    search_words         text NOT NULL,
    search               tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_words, ' '))) STORED,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, converted_contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX leads_live ON leads (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX leads_status ON leads (tenant_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX leads_owner ON leads (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX leads_search ON leads USING gin (tenant_id, search);

CREATE TABLE deals (
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    id                  uuid NOT NULL,
    version             bigint NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    name                text NOT NULL,
    amount_minor        bigint,
    currency            text,
    pipeline_id         uuid NOT NULL,
    stage               text NOT NULL,
    expected_close_date date,
    probability         integer,
    account_id          uuid,
    contact_id          uuid,
    owner_id            uuid REFERENCES users (id),
    closed_at           timestamptz,
    custom_fields       jsonb NOT NULL,
    search_words        text NOT NULL,
    search              tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_words, ' '))) STORED,
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
CREATE INDEX deals_search ON deals USING gin (tenant_id, search);

CREATE TABLE activities (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    kind        text NOT NULL,
    subject     text,
    body        text,
    occurred_at timestamptz NOT NULL,
    lead_id     uuid,
    contact_id  uuid,
    account_id  uuid,
    deal_id     uuid,
    owner_id    uuid REFERENCES users (id),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    CHECK (num_nonnulls(lead_id, contact_id, account_id, deal_id) = 1)
);
CREATE INDEX activities_live ON activities (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX activities_owner ON activities (tenant_id, owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX activities_lead ON activities (tenant_id, lead_id, occurred_at, id) WHERE deleted_at IS NULL AND lead_id IS NOT NULL;
CREATE INDEX activities_contact ON activities (tenant_id, contact_id, occurred_at, id) WHERE deleted_at IS NULL AND contact_id IS NOT NULL;
CREATE INDEX activities_account ON activities (tenant_id, account_id, occurred_at, id) WHERE deleted_at IS NULL AND account_id IS NOT NULL;
CREATE INDEX activities_deal ON activities (tenant_id, deal_id, occurred_at, id) WHERE deleted_at IS NULL AND deal_id IS NOT NULL;

CREATE TABLE deal_stage_changes (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    deal_id     uuid NOT NULL,
    pipeline_id uuid NOT NULL,
    from_stage  text,
    to_stage    text NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id)
);
CREATE INDEX deal_stage_changes_deal ON deal_stage_changes (tenant_id, deal_id, at, id);

CREATE TABLE audit_log (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    resource    text NOT NULL,
    resource_id uuid NOT NULL,
    changes     jsonb NOT NULL,
    request_id  text,
    at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_time ON audit_log (tenant_id, at, id);
CREATE INDEX audit_log_resource ON audit_log (tenant_id, resource_id, at, id);
CREATE INDEX audit_log_actor ON audit_log (tenant_id, actor, at, id);

CREATE TABLE outbox (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    id           uuid NOT NULL,
    name         text NOT NULL,
    resource     text NOT NULL,
    resource_id  uuid NOT NULL,
    actor        text NOT NULL,
    payload      jsonb NOT NULL,
    at           timestamptz NOT NULL,
    processed_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX outbox_pending ON outbox (at, id) WHERE processed_at IS NULL;

-- Row-Level Security on every tenant table (a test fails if one with a tenant_id column is
-- missed). An explicit list, so a host's own tables in the schema are never touched.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'memberships', 'pipelines', 'accounts', 'contacts', 'leads', 'deals', 'activities',
        'deal_stage_changes', 'audit_log', 'outbox'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = crm_current_tenant()) '
            'WITH CHECK (tenant_id = crm_current_tenant())', t);
    END LOOP;
END
$$;

-- Tenants are resolved (by id or slug) before a tenant is set, so the table is readable;
-- a tenant may only be created for the tenant the transaction acts for.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON tenants FOR SELECT USING (true);
CREATE POLICY tenant_create ON tenants FOR INSERT WITH CHECK (id = crm_current_tenant());

-- The application role: read and write records, never delete them (soft delete), never
-- change the audit trail (append-only), no DDL.
DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO crm_app', current_schema()); END $$;
GRANT SELECT, INSERT ON tenants, users TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON memberships TO crm_app;
GRANT SELECT, INSERT, UPDATE ON pipelines, accounts, contacts, leads, deals, activities TO crm_app;
GRANT SELECT, INSERT ON deal_stage_changes, audit_log TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO crm_app;
GRANT EXECUTE ON FUNCTION crm_current_tenant() TO crm_app;
