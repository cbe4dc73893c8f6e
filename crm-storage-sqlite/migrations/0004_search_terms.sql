-- Search terms in a B-tree instead of FTS5, as on Postgres (its migration 0004 says why there).
--
-- FTS5 yields matches in rowid order, not id order, so a page of a common word needed every
-- match first (10k rowids for a word on 1 % of 1M leads). Here one row per (record, distinct
-- word), the word cut to 64 characters (crm_core's longest query term), keyed so that one word's
-- records come in id order: a page of a common word is its first matching terms, and a rare
-- prefix is a short range (word >= prefix AND word < its successor; BINARY collation compares
-- UTF-8 bytes, i.e. code points, as the successor assumes). Records' words are split with
-- json_each: crm_core's words are alphanumeric, so quoting them as JSON strings is exact.
CREATE TABLE search_terms (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    kind      TEXT NOT NULL,
    word      TEXT NOT NULL,
    record_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, kind, word, record_id)
) WITHOUT ROWID;

DROP TRIGGER leads_fts_insert;
DROP TRIGGER leads_fts_delete;
DROP TRIGGER leads_fts_update;
DROP TABLE leads_fts;
CREATE TRIGGER leads_terms_added AFTER INSERT ON leads BEGIN
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'lead', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER leads_terms_changed AFTER UPDATE OF search_words ON leads
WHEN old.search_words IS NOT new.search_words BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'lead' AND record_id = old.id
        AND word IN (SELECT substr(value, 1, 64) FROM json_each('["' || replace(old.search_words, ' ', '","') || '"]'));
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'lead', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER leads_terms_removed AFTER DELETE ON leads BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'lead' AND record_id = old.id;
END;
INSERT INTO search_terms (tenant_id, kind, word, record_id)
SELECT DISTINCT r.tenant_id, 'lead', substr(j.value, 1, 64), r.id FROM leads r, json_each('["' || replace(r.search_words, ' ', '","') || '"]') j
WHERE j.value <> '';

DROP TRIGGER contacts_fts_insert;
DROP TRIGGER contacts_fts_delete;
DROP TRIGGER contacts_fts_update;
DROP TABLE contacts_fts;
CREATE TRIGGER contacts_terms_added AFTER INSERT ON contacts BEGIN
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'contact', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER contacts_terms_changed AFTER UPDATE OF search_words ON contacts
WHEN old.search_words IS NOT new.search_words BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'contact' AND record_id = old.id
        AND word IN (SELECT substr(value, 1, 64) FROM json_each('["' || replace(old.search_words, ' ', '","') || '"]'));
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'contact', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER contacts_terms_removed AFTER DELETE ON contacts BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'contact' AND record_id = old.id;
END;
INSERT INTO search_terms (tenant_id, kind, word, record_id)
SELECT DISTINCT r.tenant_id, 'contact', substr(j.value, 1, 64), r.id FROM contacts r, json_each('["' || replace(r.search_words, ' ', '","') || '"]') j
WHERE j.value <> '';

DROP TRIGGER accounts_fts_insert;
DROP TRIGGER accounts_fts_delete;
DROP TRIGGER accounts_fts_update;
DROP TABLE accounts_fts;
CREATE TRIGGER accounts_terms_added AFTER INSERT ON accounts BEGIN
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'account', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER accounts_terms_changed AFTER UPDATE OF search_words ON accounts
WHEN old.search_words IS NOT new.search_words BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'account' AND record_id = old.id
        AND word IN (SELECT substr(value, 1, 64) FROM json_each('["' || replace(old.search_words, ' ', '","') || '"]'));
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'account', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER accounts_terms_removed AFTER DELETE ON accounts BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'account' AND record_id = old.id;
END;
INSERT INTO search_terms (tenant_id, kind, word, record_id)
SELECT DISTINCT r.tenant_id, 'account', substr(j.value, 1, 64), r.id FROM accounts r, json_each('["' || replace(r.search_words, ' ', '","') || '"]') j
WHERE j.value <> '';

DROP TRIGGER deals_fts_insert;
DROP TRIGGER deals_fts_delete;
DROP TRIGGER deals_fts_update;
DROP TABLE deals_fts;
CREATE TRIGGER deals_terms_added AFTER INSERT ON deals BEGIN
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'deal', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER deals_terms_changed AFTER UPDATE OF search_words ON deals
WHEN old.search_words IS NOT new.search_words BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'deal' AND record_id = old.id
        AND word IN (SELECT substr(value, 1, 64) FROM json_each('["' || replace(old.search_words, ' ', '","') || '"]'));
    INSERT INTO search_terms (tenant_id, kind, word, record_id)
    SELECT DISTINCT new.tenant_id, 'deal', substr(value, 1, 64), new.id FROM json_each('["' || replace(new.search_words, ' ', '","') || '"]')
    WHERE value <> '';
END;
CREATE TRIGGER deals_terms_removed AFTER DELETE ON deals BEGIN
    DELETE FROM search_terms WHERE tenant_id = old.tenant_id AND kind = 'deal' AND record_id = old.id;
END;
INSERT INTO search_terms (tenant_id, kind, word, record_id)
SELECT DISTINCT r.tenant_id, 'deal', substr(j.value, 1, 64), r.id FROM deals r, json_each('["' || replace(r.search_words, ' ', '","') || '"]') j
WHERE j.value <> '';
