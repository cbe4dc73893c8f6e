//! Applying a change set: every row, audit entry and event in the caller's transaction.

use crm_core::store::{ChangeSet, Guard, Write};
use crm_core::{Conflict, Error, Result, TenantId};
use sqlx::PgConnection;

use crate::bulk::{Inserts, insert_tables};
use crate::error;
use crate::rows::{self, Val, bind_all};

pub(crate) async fn apply(conn: &mut PgConnection, tenant: TenantId, changes: ChangeSet) -> Result<()> {
    if changes.guards.contains(&Guard::TenantKeepsAnOwner) {
        // Lock the tenant's owner memberships first (in a fixed order, so two guarded commits
        // queue rather than deadlock); the check after the writes then sees every committed
        // demotion.
        sqlx::query("SELECT user_id FROM memberships WHERE tenant_id = $1 AND role = 'owner' ORDER BY user_id FOR UPDATE")
            .bind(tenant.uuid())
            .fetch_all(&mut *conn)
            .await
            .map_err(error::map)?;
    }
    // Runs of inserts into one table go as one multi-row statement (an import is one per table).
    let mut inserts = Inserts::default();
    for write in changes.writes {
        if !matches!(write, Write::Insert(_)) {
            inserts.flush(conn).await?;
        }
        match write {
            Write::Insert(entity) => {
                check_tenant(tenant, entity.tenant_id())?;
                let (table, values) = rows::to_row(entity).ok_or_else(unsupported)?;
                inserts.push(conn, table, values).await?;
            }
            Write::Update { entity, expected_version } => {
                check_tenant(tenant, entity.tenant_id())?;
                let (table, mut values) = rows::to_row(entity).ok_or_else(unsupported)?;
                if !table.columns.contains(&"version") {
                    return Err(unsupported());
                }
                values.push(Val::Int(Some(expected_version)));
                if execute(conn, table.update_sql(), values).await? == 0 {
                    return Err(Error::stale_version());
                }
            }
            Write::RemoveMembership { user_id, expected_version } => {
                let sql = "DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2 AND version = $3";
                let values = vec![
                    Val::Uuid(Some(tenant.uuid())),
                    Val::Uuid(Some(user_id.uuid())),
                    Val::Int(Some(expected_version)),
                ];
                if execute(conn, sql, values).await? == 0 {
                    return Err(Error::stale_version());
                }
            }
            Write::RevokeTokenFamily { family_id, at } => {
                let sql = "UPDATE refresh_tokens SET revoked_at = $3, version = version + 1
                           WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL";
                execute(
                    conn,
                    sql,
                    vec![Val::Uuid(Some(tenant.uuid())), Val::Uuid(Some(family_id)), Val::Time(Some(at))],
                )
                .await?;
            }
            Write::TouchApiKey { id, at } => {
                let sql = "UPDATE api_keys SET use_count = use_count + 1, last_used_at = $3 WHERE tenant_id = $1 AND id = $2";
                execute(
                    conn,
                    sql,
                    vec![Val::Uuid(Some(tenant.uuid())), Val::Uuid(Some(id.uuid())), Val::Time(Some(at))],
                )
                .await?;
            }
            Write::RecordLoginFailure { key, at, forget_before } => {
                let sql = "INSERT INTO login_failures (tenant_id, key, count, last_at) VALUES ($1, $2, 1, $3)
                           ON CONFLICT (tenant_id, key) DO UPDATE
                           SET count = CASE WHEN login_failures.last_at < $4 THEN 1 ELSE login_failures.count + 1 END,
                               last_at = excluded.last_at";
                let values = vec![
                    Val::Uuid(Some(tenant.uuid())),
                    Val::Text(Some(key)),
                    Val::Time(Some(at)),
                    Val::Time(Some(forget_before)),
                ];
                execute(conn, sql, values).await?;
            }
            Write::ForgiveLoginAttempt { key } => {
                let sql = "UPDATE login_failures SET count = greatest(count - 1, 0) WHERE tenant_id = $1 AND key = $2";
                execute(conn, sql, vec![Val::Uuid(Some(tenant.uuid())), Val::Text(Some(key))]).await?;
            }
            Write::RevokeMemberAccess { user_id, at } => {
                let values = || {
                    vec![Val::Uuid(Some(tenant.uuid())), Val::Uuid(Some(user_id.uuid())), Val::Time(Some(at))]
                };
                let tokens = "UPDATE refresh_tokens SET revoked_at = $3, version = version + 1
                              WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL";
                execute(conn, tokens, values()).await?;
                let keys = "UPDATE api_keys SET revoked_at = $3, version = version + 1
                            WHERE tenant_id = $1 AND created_by = $2 AND revoked_at IS NULL";
                execute(conn, keys, values()).await?;
            }
            Write::Deliver(delivery) => {
                check_tenant(tenant, Some(delivery.tenant_id))?;
                crate::deliveries::insert(conn, &delivery).await?;
            }
            Write::Enqueue(job) => {
                check_tenant(tenant, Some(job.tenant_id))?;
                crate::jobs::enqueue(conn, &job).await?;
            }
            Write::RevokeApiKey { id, at } => {
                let sql = "UPDATE api_keys SET revoked_at = $3, version = version + 1
                           WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL";
                let values =
                    vec![Val::Uuid(Some(tenant.uuid())), Val::Uuid(Some(id.uuid())), Val::Time(Some(at))];
                execute(conn, sql, values).await?;
            }
            Write::ClearLoginFailures { key } => {
                let sql = "DELETE FROM login_failures WHERE tenant_id = $1 AND key = $2";
                execute(conn, sql, vec![Val::Uuid(Some(tenant.uuid())), Val::Text(Some(key))]).await?;
            }
            Write::ClaimIdempotencyKey { record, replacing } => {
                check_tenant(tenant, Some(record.tenant_id))?;
                // Expired keys go, except the one being claimed: its row is replaced below.
                let forget = "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND expires_at < $2
                              AND NOT (principal = $3 AND key = $4)";
                let values = vec![
                    Val::Uuid(Some(tenant.uuid())),
                    Val::Time(Some(record.created_at)),
                    Val::Text(Some(record.principal.clone())),
                    Val::Text(Some(record.key.clone())),
                ];
                execute(conn, forget, values).await?;
                let mut values = rows::idempotency_row(&record);
                match replacing {
                    None => {
                        let sql =
                            "INSERT INTO idempotency_keys (tenant_id, principal, key, fingerprint, token,
                                   created_at, locked_until, expires_at, response)
                                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
                        execute(conn, sql, values).await?;
                    }
                    Some(token) => {
                        values.push(Val::Uuid(Some(token)));
                        let sql = "UPDATE idempotency_keys SET fingerprint = $4, token = $5, created_at = $6,
                                   locked_until = $7, expires_at = $8, response = $9
                                   WHERE tenant_id = $1 AND principal = $2 AND key = $3 AND token = $10";
                        if execute(conn, sql, values).await? == 0 {
                            return Err(idempotency_claim_lost());
                        }
                    }
                }
            }
            Write::CompleteIdempotencyKey { principal, key, token, response } => {
                let sql = "UPDATE idempotency_keys SET response = $5
                           WHERE tenant_id = $1 AND principal = $2 AND key = $3 AND token = $4
                           AND response IS NULL";
                let values = vec![
                    Val::Uuid(Some(tenant.uuid())),
                    Val::Text(Some(principal)),
                    Val::Text(Some(key)),
                    Val::Uuid(Some(token)),
                    Val::Text(Some(response)),
                ];
                if execute(conn, sql, values).await? == 0 {
                    return Err(idempotency_claim_lost());
                }
            }
            Write::ReleaseIdempotencyKey { principal, key, token } => {
                let sql = "DELETE FROM idempotency_keys
                           WHERE tenant_id = $1 AND principal = $2 AND key = $3 AND token = $4
                           AND response IS NULL";
                let values = vec![
                    Val::Uuid(Some(tenant.uuid())),
                    Val::Text(Some(principal)),
                    Val::Text(Some(key)),
                    Val::Uuid(Some(token)),
                ];
                execute(conn, sql, values).await?;
            }
        }
    }
    inserts.flush(conn).await?;
    for guard in &changes.guards {
        match guard {
            Guard::TenantKeepsAnOwner => {
                let sql = "SELECT EXISTS (SELECT 1 FROM memberships WHERE tenant_id = $1 AND role = 'owner')";
                let has_owner: bool = sqlx::query_scalar(sql)
                    .bind(tenant.uuid())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(error::map)?;
                if !has_owner {
                    return Err(guard.broken());
                }
            }
        }
    }
    for entry in &changes.audit {
        check_tenant(tenant, Some(entry.tenant_id))?;
    }
    for event in &changes.events {
        check_tenant(tenant, Some(event.tenant_id))?;
    }
    // Audit entries and events in one statement: one round trip for both tables.
    let audit = changes.audit.iter().map(rows::audit_row).collect();
    let events = changes.events.iter().map(rows::event_row).collect();
    insert_tables(conn, vec![(&rows::AUDIT, audit), (&rows::OUTBOX, events)]).await?;
    Ok(())
}

async fn execute(conn: &mut PgConnection, sql: &'static str, values: Vec<Val>) -> Result<u64> {
    let result = bind_all(sqlx::query(sql), values).execute(conn).await.map_err(error::map)?;
    Ok(result.rows_affected())
}

/// A row for another tenant in this scope's change set is a bug in the caller: refuse it.
fn check_tenant(scope: TenantId, row: Option<TenantId>) -> Result<()> {
    match row {
        Some(t) if t != scope => Err(Error::internal("change set writes outside its tenant scope")),
        _ => Ok(()),
    }
}

fn idempotency_claim_lost() -> Error {
    Error::Conflict(Conflict::InFlight)
}

fn unsupported() -> Error {
    Error::internal("this store does not support that write")
}
