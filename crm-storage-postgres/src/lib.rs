//! # crm-storage-postgres
//!
//! The PostgreSQL store for `crm-core`: the store a host uses when it outgrows one process, and
//! the one many app instances share. It passes the same conformance suite as the SQLite store.
//!
//! ## Isolation, twice
//! Every query filters on `tenant_id`, and behind that **Row-Level Security** is enabled and
//! forced on every tenant table. Each transaction switches to the [`APP_ROLE`] (`crm_app`: no
//! `BYPASSRLS`, owns no table) and sets `app.tenant_id`, both transaction-local
//! (`set_config(…, true)`), so a pooled connection carries no tenant or role to its next use.
//! A query that forgot its tenant filter returns nothing rather than another tenant's rows.
//! Point reads (a record by id, a membership) send the same settings and a prepared statement
//! as one message, which Postgres runs as one implicit transaction: one round trip, not two.
//! The audit table is append-only for the application role (no `UPDATE`, `DELETE`, `TRUNCATE`).
//!
//! ## Roles a deployment needs
//! - an **owner** role that runs the migrations ([`PgStore::migrate`]) and owns the tables; the
//!   migrations create the `crm_app` role (`NOLOGIN NOBYPASSRLS`) and grant it what it needs;
//! - the **login** role the application connects as, allowed to switch to `crm_app` and, to
//!   claim jobs, to [`WORKER_ROLE`] (`crm_worker`, which sees every tenant's rows of the two
//!   job tables and no other table): `GRANT crm_app, crm_worker TO my_app_login;` (a process
//!   that runs no workers may leave out `crm_worker`). It may be the owner itself in small
//!   set-ups — the per-transaction switch to `crm_app` still applies RLS — but in production it should not be
//!   a superuser: the switch is what applies RLS, and a superuser session can switch back
//!   (`RESET ROLE`) if anything ever runs SQL on it outside the store.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! let store = crm_storage_postgres::PgStore::connect("postgres://crm_owner@db/crm").await?;
//! let crm = crm_core::Crm::new(store);
//! # Ok(()) }
//! ```

mod bulk;
mod deliveries;
mod error;
mod jobs;
mod migrate;
mod point;
mod read;
mod retention;
mod rows;
mod schedules;
mod store;
pub mod testing;
mod write;

pub use migrate::SCHEMA_VERSION;
pub use store::{APP_ROLE, PgStore, WORKER_ROLE};
