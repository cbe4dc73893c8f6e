//! The ceiling for the HTTP load test (`benches/load.sh`): a bare axum server with
//! `GET /hello` and `GET /leads/{id}`, which reads one lead with the raw driver — the same point
//! select the store runs, no authentication, no tenant switch, no middleware — and returns its
//! columns as JSON.
//!
//! ```sh
//! crm-bench-baseline --bind 127.0.0.1:18081 --tenant <uuid> --database <file.db | postgres://…>
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use crm_benches::{pg, sqlite};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Clone)]
struct App {
    tenant: Uuid,
    db: Arc<Db>,
}

enum Db {
    /// Read-only connections, one taken per request (the store keeps four readers too).
    Sqlite {
        conns: Vec<std::sync::Mutex<rusqlite::Connection>>,
        next: AtomicUsize,
    },
    Postgres(sqlx::PgPool),
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "crm-bench-baseline --bind ADDR --tenant UUID --database FILE|postgres://…";
    let bind: SocketAddr = arg(&args, "--bind").ok_or(usage)?.parse()?;
    let tenant: Uuid = arg(&args, "--tenant").ok_or(usage)?.parse()?;
    let database = arg(&args, "--database").ok_or(usage)?;
    let db = if database.starts_with("postgres") {
        // The crm server's default pool size.
        Db::Postgres(sqlx::postgres::PgPoolOptions::new().max_connections(16).connect(&database).await?)
    } else {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conns = (0..4)
            .map(|_| rusqlite::Connection::open_with_flags(&database, flags).map(std::sync::Mutex::new))
            .collect::<Result<_, _>>()?;
        Db::Sqlite { conns, next: AtomicUsize::new(0) }
    };
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/leads/{id}", get(lead))
        .with_state(App { tenant, db: Arc::new(db) });
    let listener = tokio::net::TcpListener::bind(bind).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn lead(State(app): State<App>, Path(id): Path<Uuid>) -> Response {
    let row = match &*app.db {
        Db::Sqlite { conns, next } => {
            let start = next.fetch_add(1, Ordering::Relaxed);
            let conn = (0..conns.len())
                .find_map(|i| conns[(start + i) % conns.len()].try_lock().ok())
                .unwrap_or_else(|| conns[start % conns.len()].lock().expect("lock"));
            // Inline on the async worker: a few microseconds, as a hand-written handler would.
            sqlite_json(sqlite::get(&conn, app.tenant.as_bytes(), id))
        }
        Db::Postgres(pool) => pg_json(pg::get(pool, app.tenant, id).await),
    };
    (StatusCode::OK, Json(row)).into_response()
}

fn uuid_text(bytes: &[u8]) -> Value {
    Uuid::from_slice(bytes).map_or(Value::Null, |u| json!(u))
}

fn sqlite_json(l: sqlite::RawLead) -> Value {
    json!({
        "id": uuid_text(&l.id), "version": l.version, "created_at": l.created_at, "updated_at": l.updated_at,
        "first_name": l.first_name, "last_name": l.last_name, "email": l.email, "phone": l.phone,
        "company": l.company, "title": l.title, "source": l.source, "status": l.status,
        "owner_id": l.owner_id.as_deref().map(uuid_text), "converted_contact_id": l.converted_contact_id.as_deref().map(uuid_text),
        "custom_fields": serde_json::from_str::<Value>(&l.custom_fields).unwrap_or(Value::Null),
    })
}

fn pg_json(l: pg::RawLead) -> Value {
    json!({
        "id": l.id, "version": l.version, "created_at": l.created_at, "updated_at": l.updated_at,
        "first_name": l.first_name, "last_name": l.last_name, "email": l.email, "phone": l.phone,
        "company": l.company, "title": l.title, "source": l.source, "status": l.status,
        "owner_id": l.owner_id, "converted_contact_id": l.converted_contact_id, "custom_fields": l.custom_fields,
    })
}
