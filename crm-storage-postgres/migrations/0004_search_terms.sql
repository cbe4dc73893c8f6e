-- Search terms in a B-tree, so Row-Level Security lets searches use an index.
--
-- Postgres applies a policy before any condition whose operator is not LEAKPROOF, and an index
-- may evaluate only conditions that could come first. `tsvector @@ tsquery` is not LEAKPROOF, so
-- for the application role the GIN index on (tenant_id, search) served only the tenant key: a
-- search for a rare word read every row of the tenant. Text and uuid comparisons are LEAKPROOF,
-- so a prefix becomes a range scan here: word >= prefix AND word < its successor.
--
-- One row per (record, distinct word), the word cut to 64 characters (crm_core's longest query
-- term: a term is a prefix of a word exactly when it is a prefix of the word's first 64), in the
-- C collation so ranges follow code points as lexeme prefixes do. Triggers keep the table in
-- step with `search_words` in the same transaction as the record's write; `search` stays for
-- rechecking every term of a query and for the walk of the id index.
CREATE TABLE search_terms (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    kind      text NOT NULL,
    word      text COLLATE "C" NOT NULL,
    record_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, kind, word, record_id)
);

ALTER TABLE search_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE search_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON search_terms
    USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, DELETE ON search_terms TO crm_app;

-- The terms of one record's words (`search_words` is crm_core's words, space-separated).
CREATE FUNCTION crm_search_terms_of(words text) RETURNS SETOF text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT DISTINCT left(w, 64) FROM unnest(string_to_array(words, ' ')) w WHERE w <> '' $$;

-- Inserts: once per statement, so a bulk import's multi-row insert adds its terms in one go.
CREATE FUNCTION crm_search_terms_added() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT a.tenant_id, TG_ARGV[0], w, a.id FROM added a, crm_search_terms_of(a.search_words) w;
    RETURN NULL;
END
$$;

-- Updates that change a record's words (most updates do not, and skip this by the WHEN clause).
CREATE FUNCTION crm_search_terms_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM search_terms
    WHERE tenant_id = OLD.tenant_id AND kind = TG_ARGV[0] AND record_id = OLD.id
      AND word IN (SELECT crm_search_terms_of(OLD.search_words));
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT NEW.tenant_id, TG_ARGV[0], w, NEW.id FROM crm_search_terms_of(NEW.search_words) w;
    RETURN NULL;
END
$$;

-- Deletions (records are soft-deleted today; an erasure must not leave its words behind).
CREATE FUNCTION crm_search_terms_removed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM search_terms
    WHERE tenant_id = OLD.tenant_id AND kind = TG_ARGV[0] AND record_id = OLD.id;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
    k text;
BEGIN
    FOR t, k IN VALUES ('leads', 'lead'), ('contacts', 'contact'), ('accounts', 'account'), ('deals', 'deal')
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS added '
            'FOR EACH STATEMENT EXECUTE FUNCTION crm_search_terms_added(%L)', t || '_terms_added', t, k);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE OF search_words ON %I FOR EACH ROW '
            'WHEN (OLD.search_words IS DISTINCT FROM NEW.search_words) '
            'EXECUTE FUNCTION crm_search_terms_changed(%L)', t || '_terms_changed', t, k);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I FOR EACH ROW '
            'EXECUTE FUNCTION crm_search_terms_removed(%L)', t || '_terms_removed', t, k);
        -- Searches no longer read the GIN index; it only slowed writes.
        EXECUTE format('DROP INDEX IF EXISTS %I', t || '_search');
    END LOOP;
END
$$;

-- Existing records, one tenant at a time: the owning role is subject to RLS too (forced).
DO $$
DECLARE
    tenant uuid;
BEGIN
    FOR tenant IN SELECT id FROM tenants LOOP
        PERFORM set_config('app.tenant_id', tenant::text, true);
        INSERT INTO search_terms (tenant_id, kind, word, record_id)
        SELECT r.tenant_id, 'lead', w, r.id FROM leads r, crm_search_terms_of(r.search_words) w
        WHERE r.tenant_id = tenant
        UNION ALL
        SELECT r.tenant_id, 'contact', w, r.id FROM contacts r, crm_search_terms_of(r.search_words) w
        WHERE r.tenant_id = tenant
        UNION ALL
        SELECT r.tenant_id, 'account', w, r.id FROM accounts r, crm_search_terms_of(r.search_words) w
        WHERE r.tenant_id = tenant
        UNION ALL
        SELECT r.tenant_id, 'deal', w, r.id FROM deals r, crm_search_terms_of(r.search_words) w
        WHERE r.tenant_id = tenant;
    END LOOP;
    PERFORM set_config('app.tenant_id', '', true);
END
$$;
