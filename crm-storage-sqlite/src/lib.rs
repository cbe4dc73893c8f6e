//! # crm-storage-sqlite
//!
//! The embedded default store for `crm-core`, on SQLite (bundled, so nothing to install).
//!
//! - **One call sets up the schema**: [`SqliteStore::open`] runs the embedded, versioned
//!   migrations (tracked in the store's own `crm_schema_migrations` table) before returning.
//! - **File or memory**: a file database runs in WAL mode with one writer connection and a small
//!   pool of readers, so reads never wait for writes; [`SqliteStore::open_in_memory`] keeps
//!   everything on one private connection (tests, ephemeral hosts).
//! - **Off the async runtime** (invariant 8): every connection lives on a thread of its own;
//!   a call sends its statement there and awaits the answer, on any runtime. A slow query never
//!   stalls other tasks — but it does hold its own task: a `timeout` around a store call fires
//!   only once the statement returns.
//! - **One write, one transaction**: [`RecordStore::commit`](crm_core::store::RecordStore::commit) applies a whole change set —
//!   rows, audit entries, outbox events — in one savepoint of the writer's `BEGIN IMMEDIATE`
//!   transaction, all of it or none of it. Change sets that queue up while the writer is busy
//!   share that transaction (group commit: one fsync for all of them), each in its own
//!   savepoint, and none is acknowledged before the commit.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! let store = crm_storage_sqlite::SqliteStore::open("crm.db").await?;
//! let crm = crm_core::Crm::new(store);
//! # Ok(()) }
//! ```

mod conn;
mod deliveries;
mod error;
mod jobs;
mod migrate;
mod read;
mod retention;
mod rows;
mod schedules;
mod store;
mod write;

pub use conn::{Durability, SqliteOptions};
pub use migrate::SCHEMA_VERSION;
pub use store::SqliteStore;
