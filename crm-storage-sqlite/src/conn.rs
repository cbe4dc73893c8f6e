//! Connections: opening, pragmas, and running work on blocking threads.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crm_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};

use crate::error;

/// How hard a commit works to survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: an acknowledged write survives power loss. The default, because a
    /// CRM must not lose a write it confirmed.
    #[default]
    Full,
    /// `synchronous = NORMAL`: in WAL mode the database never corrupts, but the last commits
    /// before a power cut (not a process crash) may be lost. Faster commits.
    Normal,
}

/// Settings for [`crate::SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Reader connections for a file database (default 4). Readers never block the writer.
    pub readers: usize,
    /// How long a statement waits for another process's lock before giving up (default 5 s).
    pub busy_timeout: Duration,
    /// Commit durability.
    pub durability: Durability,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { readers: 4, busy_timeout: Duration::from_secs(5), durability: Durability::Full }
    }
}

/// The connections of one store: a writer and readers (which are the writer itself in memory).
#[derive(Debug)]
pub(crate) struct Connections {
    writer: Arc<Mutex<Connection>>,
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    pub(crate) location: String,
}

impl Connections {
    /// Opens a file database in WAL mode with a writer and `options.readers` readers.
    pub(crate) fn open_file(path: &Path, options: &SqliteOptions) -> Result<Self> {
        let writer = open(Some(path), OpenFlags::default(), options)?;
        writer.pragma_update(None, "journal_mode", "WAL").map_err(error::map)?;
        let flags =
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let readers = (0..options.readers.max(1))
            .map(|_| open(Some(path), flags, options).map(|c| Arc::new(Mutex::new(c))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
            location: path.display().to_string(),
        })
    }

    /// Opens a private in-memory database on one connection.
    pub(crate) fn open_memory(options: &SqliteOptions) -> Result<Self> {
        let conn = Arc::new(Mutex::new(open(None, OpenFlags::default(), options)?));
        Ok(Self {
            writer: conn.clone(),
            readers: vec![conn],
            next_reader: AtomicUsize::new(0),
            location: ":memory:".into(),
        })
    }

    /// Runs `f` on a reader connection on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let readers = self.readers.clone();
        off_runtime(move || {
            // Take the first idle reader, starting from a rotating position; wait on one if all are busy.
            let n = readers.len();
            let guard = (0..n)
                .find_map(|i| readers[(start + i) % n].try_lock().ok())
                .map_or_else(|| lock(&readers[start % n]), Ok)?;
            f(&guard)
        })
        .await
    }

    /// Runs `f` on the writer connection on a blocking thread.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        off_runtime(move || f(&mut *lock(&writer)?)).await
    }

    /// The writer connection, for setup on the calling thread (migrations at open).
    pub(crate) fn writer_blocking(&self) -> Result<MutexGuard<'_, Connection>> {
        lock(&self.writer)
    }
}

/// Runs blocking database work without stalling async tasks (invariant 8).
///
/// On a multi-threaded runtime the current worker becomes a blocking thread for the duration
/// (`block_in_place`: the runtime moves its other tasks to another worker), which avoids the
/// two cross-thread hand-offs of `spawn_blocking` — most of the cost of a point read. Elsewhere
/// (a current-thread runtime) the work goes to the blocking pool.
async fn off_runtime<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        tokio::task::spawn_blocking(work).await.map_err(error::join)?
    }
}

fn lock(conn: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>> {
    // A panic while holding the lock leaves no open transaction behind (rusqlite rolls back on
    // drop), so the connection is still sound: recover it rather than fail forever.
    Ok(conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

fn open(path: Option<&Path>, flags: OpenFlags, options: &SqliteOptions) -> Result<Connection> {
    let conn = match path {
        Some(path) => Connection::open_with_flags(path, flags),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(..) => Error::Unavailable(Box::new(e)),
        other => error::map(other),
    })?;
    conn.busy_timeout(options.busy_timeout).map_err(error::map)?;
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous}; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(error::map)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
