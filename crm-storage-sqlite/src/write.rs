//! Applying a change set: every row, audit entry and event in one savepoint of the writer's
//! immediate transaction (which may hold other change sets too: see `conn.rs`).

use crm_core::store::{ChangeSet, Guard, Write};
use crm_core::{Conflict, Error, Result, TenantId};
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use crate::error;
use crate::rows;

/// A change set with its rows already turned into SQL values. The writer is one thread that
/// every write in the process goes through, so this is done by the caller, before the hand-off:
/// building the values (JSON of audit entries and events included) was a tenth of the writer's
/// time for a create.
pub(crate) struct Prepared {
    tenant: TenantId,
    writes: Vec<Step>,
    guards: Vec<Guard>,
    /// Audit entries, then events: `(table, values)` rows inserted after the writes.
    rows: Vec<(&'static rows::Table, Vec<Value>)>,
}

enum Step {
    Insert(&'static rows::Table, Vec<Value>),
    /// Values end with the expected version.
    Update(&'static rows::Table, Vec<Value>),
    /// Memberships, tokens, keys, login failures, idempotency: rare next to rows.
    Other(Box<Write>),
}

/// Checks that every row is the scope's tenant's and turns the rows into SQL values.
pub(crate) fn prepare(tenant: TenantId, changes: ChangeSet) -> Result<Prepared> {
    let mut writes = Vec::with_capacity(changes.writes.len());
    for write in changes.writes {
        writes.push(match write {
            Write::Insert(entity) => {
                check_tenant(tenant, entity.tenant_id())?;
                let (table, values) = rows::to_row(entity).ok_or_else(unsupported)?;
                Step::Insert(table, values)
            }
            Write::Update { entity, expected_version } => {
                check_tenant(tenant, entity.tenant_id())?;
                let (table, mut values) = rows::to_row(entity).ok_or_else(unsupported)?;
                if !table.columns.contains(&"version") {
                    return Err(unsupported());
                }
                values.push(Value::Integer(expected_version));
                Step::Update(table, values)
            }
            other => Step::Other(Box::new(other)),
        });
    }
    let mut rows = Vec::with_capacity(changes.audit.len() + changes.events.len());
    for entry in &changes.audit {
        check_tenant(tenant, Some(entry.tenant_id))?;
        rows.push((&rows::AUDIT, rows::audit_row(entry)));
    }
    for event in &changes.events {
        check_tenant(tenant, Some(event.tenant_id))?;
        rows.push((&rows::OUTBOX, rows::event_row(event)));
    }
    Ok(Prepared { tenant, writes, guards: changes.guards, rows })
}

/// Applies a prepared change set on the writer's connection.
pub(crate) fn commit(conn: &mut Connection, prepared: Prepared) -> Result<()> {
    let Prepared { tenant, writes, guards, rows } = prepared;
    // The writer thread has begun an immediate transaction (the write lock is held); on any error
    // the savepoint is dropped, which rolls back everything this change set did and nothing else.
    let tx = conn.savepoint().map_err(error::map)?;
    for step in writes {
        match step {
            Step::Insert(table, values) => {
                execute(&tx, table.insert_sql(), values)?;
            }
            Step::Update(table, values) => {
                if execute(&tx, table.update_sql(), values)? == 0 {
                    return Err(Error::stale_version());
                }
            }
            Step::Other(write) => apply(&tx, tenant, *write)?,
        }
    }
    // The writer holds the database lock, so guards checked here cannot race another commit.
    for guard in &guards {
        check_guard(&tx, tenant, *guard)?;
    }
    for (table, values) in rows {
        execute(&tx, table.insert_sql(), values)?;
    }
    tx.commit().map_err(error::map)
}

fn apply(tx: &Connection, tenant: TenantId, write: Write) -> Result<()> {
    match write {
        // `prepare` turned these into steps.
        Write::Insert(_) | Write::Update { .. } => return Err(unsupported()),
        Write::RemoveMembership { user_id, expected_version } => {
            let sql = "DELETE FROM memberships WHERE tenant_id = ?1 AND user_id = ?2 AND version = ?3";
            let params =
                vec![rows::uuid(tenant.uuid()), rows::uuid(user_id.uuid()), Value::Integer(expected_version)];
            if execute(tx, sql, params)? == 0 {
                return Err(Error::stale_version());
            }
        }
        Write::RevokeTokenFamily { family_id, at } => {
            let sql = "UPDATE refresh_tokens SET revoked_at = ?3, version = version + 1
                       WHERE tenant_id = ?1 AND family_id = ?2 AND revoked_at IS NULL";
            execute(tx, sql, vec![rows::uuid(tenant.uuid()), rows::uuid(family_id), rows::time(at)])?;
        }
        Write::TouchApiKey { id, at } => {
            let sql = "UPDATE api_keys SET use_count = use_count + 1, last_used_at = ?3 WHERE tenant_id = ?1 AND id = ?2";
            execute(tx, sql, vec![rows::uuid(tenant.uuid()), rows::uuid(id.uuid()), rows::time(at)])?;
        }
        Write::RecordLoginFailure { key, at, forget_before } => {
            let sql = "INSERT INTO login_failures (tenant_id, key, count, last_at) VALUES (?1, ?2, 1, ?3)
                       ON CONFLICT (tenant_id, key) DO UPDATE
                       SET count = CASE WHEN last_at < ?4 THEN 1 ELSE count + 1 END, last_at = excluded.last_at";
            let params =
                vec![rows::uuid(tenant.uuid()), Value::Text(key), rows::time(at), rows::time(forget_before)];
            execute(tx, sql, params)?;
        }
        Write::ForgiveLoginAttempt { key } => {
            let sql = "UPDATE login_failures SET count = max(count - 1, 0) WHERE tenant_id = ?1 AND key = ?2";
            execute(tx, sql, vec![rows::uuid(tenant.uuid()), Value::Text(key)])?;
        }
        Write::RevokeMemberAccess { user_id, at } => {
            let params = || vec![rows::uuid(tenant.uuid()), rows::uuid(user_id.uuid()), rows::time(at)];
            let tokens = "UPDATE refresh_tokens SET revoked_at = ?3, version = version + 1
                          WHERE tenant_id = ?1 AND user_id = ?2 AND revoked_at IS NULL";
            execute(tx, tokens, params())?;
            let keys = "UPDATE api_keys SET revoked_at = ?3, version = version + 1
                        WHERE tenant_id = ?1 AND created_by = ?2 AND revoked_at IS NULL";
            execute(tx, keys, params())?;
        }
        Write::Deliver(delivery) => {
            check_tenant(tenant, Some(delivery.tenant_id))?;
            crate::deliveries::insert(tx, &delivery)?;
        }
        Write::Enqueue(job) => {
            check_tenant(tenant, Some(job.tenant_id))?;
            crate::jobs::enqueue_in(tx, &job)?;
        }
        Write::RevokeApiKey { id, at } => {
            let sql = "UPDATE api_keys SET revoked_at = ?3, version = version + 1
                       WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL";
            execute(tx, sql, vec![rows::uuid(tenant.uuid()), rows::uuid(id.uuid()), rows::time(at)])?;
        }
        Write::ClearLoginFailures { key } => {
            let sql = "DELETE FROM login_failures WHERE tenant_id = ?1 AND key = ?2";
            execute(tx, sql, vec![rows::uuid(tenant.uuid()), Value::Text(key)])?;
        }
        Write::ClaimIdempotencyKey { record, replacing } => {
            check_tenant(tenant, Some(record.tenant_id))?;
            // Expired keys go, except the one being claimed: its row is replaced below.
            let forget = "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND expires_at < ?2
                          AND NOT (principal = ?3 AND key = ?4)";
            let values = vec![
                rows::uuid(tenant.uuid()),
                rows::time(record.created_at),
                Value::Text(record.principal.clone()),
                Value::Text(record.key.clone()),
            ];
            execute(tx, forget, values)?;
            let mut values = rows::idempotency_row(&record);
            match replacing {
                None => {
                    let sql = "INSERT INTO idempotency_keys (tenant_id, principal, key, fingerprint, token,
                               created_at, locked_until, expires_at, response)
                               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
                    execute(tx, sql, values)?;
                }
                Some(token) => {
                    values.push(rows::uuid(token));
                    let sql = "UPDATE idempotency_keys SET fingerprint = ?4, token = ?5, created_at = ?6,
                               locked_until = ?7, expires_at = ?8, response = ?9
                               WHERE tenant_id = ?1 AND principal = ?2 AND key = ?3 AND token = ?10";
                    if execute(tx, sql, values)? == 0 {
                        return Err(idempotency_claim_lost());
                    }
                }
            }
        }
        Write::CompleteIdempotencyKey { principal, key, token, response } => {
            let sql = "UPDATE idempotency_keys SET response = ?5
                       WHERE tenant_id = ?1 AND principal = ?2 AND key = ?3 AND token = ?4 AND response IS NULL";
            let values = vec![
                rows::uuid(tenant.uuid()),
                Value::Text(principal),
                Value::Text(key),
                rows::uuid(token),
                Value::Text(response),
            ];
            if execute(tx, sql, values)? == 0 {
                return Err(idempotency_claim_lost());
            }
        }
        Write::ReleaseIdempotencyKey { principal, key, token } => {
            let sql = "DELETE FROM idempotency_keys
                       WHERE tenant_id = ?1 AND principal = ?2 AND key = ?3 AND token = ?4 AND response IS NULL";
            let values =
                vec![rows::uuid(tenant.uuid()), Value::Text(principal), Value::Text(key), rows::uuid(token)];
            execute(tx, sql, values)?;
        }
    }
    Ok(())
}

fn idempotency_claim_lost() -> Error {
    Error::Conflict(Conflict::InFlight)
}

fn check_guard(tx: &Connection, tenant: TenantId, guard: Guard) -> Result<()> {
    match guard {
        Guard::TenantKeepsAnOwner => {
            let sql = "SELECT EXISTS (SELECT 1 FROM memberships WHERE tenant_id = ?1 AND role = 'owner')";
            let mut stmt = tx.prepare_cached(sql).map_err(error::map)?;
            let has_owner: bool =
                stmt.query_row([rows::uuid(tenant.uuid())], |r| r.get(0)).map_err(error::map)?;
            if has_owner { Ok(()) } else { Err(guard.broken()) }
        }
    }
}

fn execute(tx: &Connection, sql: &str, values: Vec<Value>) -> Result<usize> {
    let mut stmt = tx.prepare_cached(sql).map_err(error::map)?;
    stmt.execute(params_from_iter(values)).map_err(error::map)
}

/// A row for another tenant in this scope's change set is a bug in the caller: refuse it.
fn check_tenant(scope: TenantId, row: Option<TenantId>) -> Result<()> {
    match row {
        Some(t) if t != scope => Err(Error::internal("change set writes outside its tenant scope")),
        _ => Ok(()),
    }
}

fn unsupported() -> Error {
    Error::internal("this store does not support that write")
}
