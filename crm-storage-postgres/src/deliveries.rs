//! Webhook deliveries on Postgres (`WebhookStore`, `docs/webhooks.md`): inserted by a change
//! set, read per lane and per endpoint, and updated with each attempt's log row, all as the
//! application role in the delivery's tenant.

use crm_core::delivery::{Delivery, DeliveryAttempt, DeliveryId};
use crm_core::model::WebhookId;
use crm_core::{Error, Result, TenantId};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::error;
use crate::jobs::execute;
use crate::rows::{self, Val, bind_all};

/// Stores a delivery in the caller's transaction.
pub(crate) async fn insert(conn: &mut PgConnection, delivery: &Delivery) -> Result<()> {
    let sql = format!(
        "INSERT INTO webhook_deliveries ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        rows::DELIVERY_COLUMNS
    );
    execute(conn, sql, rows::delivery_row(delivery)).await.map(drop)
}

async fn one(conn: &mut PgConnection, sql: String, values: Vec<Val>) -> Result<Option<Delivery>> {
    let row =
        bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_optional(conn).await.map_err(error::map)?;
    row.as_ref().map(|r| rows::delivery(r).map_err(error::map)).transpose()
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
) -> Result<Option<Delivery>> {
    let sql =
        format!("SELECT {} FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2", rows::DELIVERY_COLUMNS);
    one(conn, sql, vec![Val::Uuid(Some(tenant.uuid())), Val::Uuid(Some(id.uuid()))]).await
}

/// The first pending delivery of `d`'s lane before it (`later`: after it).
pub(crate) async fn neighbour(
    conn: &mut PgConnection,
    tenant: TenantId,
    d: &Delivery,
    later: bool,
) -> Result<Option<Delivery>> {
    let side = if later { ">" } else { "<" };
    let sql = format!(
        "SELECT {} FROM webhook_deliveries
         WHERE tenant_id = $1 AND webhook_id = $2 AND lane = $3 AND state = 'pending' AND id {side} $4
         ORDER BY id LIMIT 1",
        rows::DELIVERY_COLUMNS
    );
    let values = vec![
        Val::Uuid(Some(tenant.uuid())),
        Val::Uuid(Some(d.webhook_id.uuid())),
        Val::Uuid(Some(d.lane)),
        Val::Uuid(Some(d.id.uuid())),
    ];
    one(conn, sql, values).await
}

/// Writes the delivery's outcome and appends the attempt, if one was made, in the caller's transaction.
pub(crate) async fn update_delivery(
    conn: &mut PgConnection,
    tenant: TenantId,
    d: &Delivery,
    attempt: Option<&DeliveryAttempt>,
) -> Result<()> {
    let update = "UPDATE webhook_deliveries
                  SET state = $3, attempts = $4, next_attempt_at = $5, last_error = $6, updated_at = $7
                  WHERE tenant_id = $1 AND id = $2"
        .to_owned();
    let values = vec![
        Val::Uuid(Some(tenant.uuid())),
        Val::Uuid(Some(d.id.uuid())),
        Val::Text(Some(d.state.as_str().to_owned())),
        Val::Int4(Some(rows::count(d.attempts))),
        Val::Time(Some(d.next_attempt_at)),
        Val::Text(d.last_error.clone()),
        Val::Time(Some(d.updated_at)),
    ];
    if execute(conn, update, values).await? == 0 {
        return Err(Error::NotFound);
    }
    let insert = format!(
        "INSERT INTO webhook_attempts (tenant_id, {}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        rows::ATTEMPT_COLUMNS
    );
    match attempt {
        Some(attempt) => execute(conn, insert, rows::attempt_row(tenant, attempt)).await.map(drop),
        None => Ok(()),
    }
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    tenant: TenantId,
    webhook: WebhookId,
    before: Option<DeliveryId>,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {} FROM webhook_deliveries
         WHERE tenant_id = $1 AND webhook_id = $2 AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
        rows::DELIVERY_COLUMNS
    );
    let values = vec![
        Val::Uuid(Some(tenant.uuid())),
        Val::Uuid(Some(webhook.uuid())),
        Val::Uuid(before.map(|b| b.uuid())),
        Val::Int(Some(i64::from(limit))),
    ];
    let found =
        bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_all(conn).await.map_err(error::map)?;
    found.iter().map(|r| rows::delivery(r).map_err(error::map)).collect()
}

pub(crate) async fn attempts(
    conn: &mut PgConnection,
    tenant: TenantId,
    delivery: DeliveryId,
) -> Result<Vec<DeliveryAttempt>> {
    let sql = format!(
        "SELECT {} FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY number",
        rows::ATTEMPT_COLUMNS
    );
    let values = vec![Val::Uuid(Some(tenant.uuid())), Val::Uuid(Some(delivery.uuid()))];
    let found =
        bind_all(sqlx::query(AssertSqlSafe(sql)), values).fetch_all(conn).await.map_err(error::map)?;
    found.iter().map(|r| rows::attempt(r).map_err(error::map)).collect()
}
