//! Webhook deliveries on SQLite (`WebhookStore`, `docs/webhooks.md`): inserted by a change set,
//! read per lane and per endpoint, and updated with each attempt's log row.

use crm_core::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crm_core::model::WebhookId;
use crm_core::{Error, Result, TenantId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use crate::jobs::execute;
use crate::{error, rows};

/// Stores a delivery in the caller's transaction.
pub(crate) fn insert(tx: &Connection, delivery: &Delivery) -> Result<()> {
    let sql = format!(
        "INSERT INTO webhook_deliveries ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        rows::DELIVERY_COLUMNS
    );
    execute(tx, &sql, rows::delivery_row(delivery)).map(drop)
}

fn one(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<Option<Delivery>> {
    let mut stmt = conn.prepare_cached(sql).map_err(error::map)?;
    stmt.query_row(params_from_iter(params), rows::delivery).optional().map_err(error::map)
}

pub(crate) fn get(conn: &Connection, tenant: TenantId, id: DeliveryId) -> Result<Option<Delivery>> {
    let sql =
        format!("SELECT {} FROM webhook_deliveries WHERE tenant_id = ?1 AND id = ?2", rows::DELIVERY_COLUMNS);
    one(conn, &sql, vec![rows::uuid(tenant.uuid()), rows::uuid(id.uuid())])
}

/// The first pending delivery of `d`'s lane before it (`later`: after it).
pub(crate) fn neighbour(
    conn: &Connection,
    tenant: TenantId,
    d: &Delivery,
    later: bool,
) -> Result<Option<Delivery>> {
    let side = if later { ">" } else { "<" };
    let sql = format!(
        "SELECT {} FROM webhook_deliveries
         WHERE tenant_id = ?1 AND webhook_id = ?2 AND lane = ?3 AND state = 'pending' AND id {side} ?4
         ORDER BY id LIMIT 1",
        rows::DELIVERY_COLUMNS
    );
    let params = vec![
        rows::uuid(tenant.uuid()),
        rows::uuid(d.webhook_id.uuid()),
        rows::uuid(d.lane),
        rows::uuid(d.id.uuid()),
    ];
    one(conn, &sql, params)
}

/// Writes the delivery's outcome and appends the attempt, if one was made, in one savepoint.
pub(crate) fn update_delivery(
    conn: &mut Connection,
    tenant: TenantId,
    d: &Delivery,
    attempt: Option<&DeliveryAttempt>,
) -> Result<()> {
    let tx = conn.savepoint().map_err(error::map)?;
    let update = "UPDATE webhook_deliveries
                  SET state = ?3, attempts = ?4, next_attempt_at = ?5, last_error = ?6, updated_at = ?7
                  WHERE tenant_id = ?1 AND id = ?2";
    let values = vec![
        rows::uuid(tenant.uuid()),
        rows::uuid(d.id.uuid()),
        Value::Text(d.state.as_str().to_owned()),
        Value::Integer(d.attempts.into()),
        rows::time(d.next_attempt_at),
        d.last_error.clone().map_or(Value::Null, Value::Text),
        rows::time(d.updated_at),
    ];
    if execute(&tx, update, values)? == 0 {
        return Err(Error::NotFound);
    }
    let insert = format!(
        "INSERT INTO webhook_attempts (tenant_id, {}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        rows::ATTEMPT_COLUMNS
    );
    if let Some(attempt) = attempt {
        execute(&tx, &insert, rows::attempt_row(tenant, attempt))?;
    }
    tx.commit().map_err(error::map)
}

pub(crate) fn list(
    conn: &Connection,
    tenant: TenantId,
    webhook: WebhookId,
    before: Option<DeliveryId>,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {} FROM webhook_deliveries WHERE tenant_id = ?1 AND webhook_id = ?2 AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4",
        rows::DELIVERY_COLUMNS
    );
    let before = before.map_or(Value::Null, |b| rows::uuid(b.uuid()));
    let params =
        vec![rows::uuid(tenant.uuid()), rows::uuid(webhook.uuid()), before, Value::Integer(limit.into())];
    let mut stmt = conn.prepare_cached(&sql).map_err(error::map)?;
    let found = stmt.query_map(params_from_iter(params), rows::delivery).map_err(error::map)?;
    found.collect::<rusqlite::Result<Vec<_>>>().map_err(error::map)
}

pub(crate) fn attempts(
    conn: &Connection,
    tenant: TenantId,
    delivery: DeliveryId,
) -> Result<Vec<DeliveryAttempt>> {
    let sql = format!(
        "SELECT {} FROM webhook_attempts WHERE tenant_id = ?1 AND delivery_id = ?2 ORDER BY number",
        rows::ATTEMPT_COLUMNS
    );
    let params = vec![rows::uuid(tenant.uuid()), rows::uuid(delivery.uuid())];
    let mut stmt = conn.prepare_cached(&sql).map_err(error::map)?;
    let found = stmt.query_map(params_from_iter(params), rows::attempt).map_err(error::map)?;
    found.collect::<rusqlite::Result<Vec<_>>>().map_err(error::map)
}
