//! Connections: opening, pragmas, and the threads that own them.
//!
//! Every connection lives on a thread of its own, so SQLite work never runs on the async
//! runtime (invariant 8): a caller sends a job and awaits its answer. Readers share one queue;
//! the writer has its own, and commits the change sets it finds waiting together (group commit):
//! one `BEGIN IMMEDIATE … COMMIT` — one fsync — around many change sets, each in a savepoint of
//! its own, so each is still applied whole or not at all, and none is acknowledged before the
//! commit that makes it durable.
//!
//! (Statements used to run in `block_in_place` on the caller's worker. That is cheap for one
//! caller, but under load every call handed the worker's core to another thread: at 64
//! connections a server spent most of its time switching threads, and grew hundreds of them.)

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crm_core::{Error, Result};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

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
    /// Reader connections — each on a thread of its own — for a file database (default: one per
    /// CPU, between 2 and 8). Readers never block the writer. More readers than CPUs mostly add
    /// thread switches (on 2 CPUs, 4 readers served a third fewer point reads than 2); more help
    /// only when long queries would otherwise queue short ones.
    pub readers: usize,
    /// How long a statement waits for another process's lock before giving up (default 5 s).
    pub busy_timeout: Duration,
    /// Commit durability.
    pub durability: Durability,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self { readers: cpus.clamp(2, 8), busy_timeout: Duration::from_secs(5), durability: Durability::Full }
    }
}

/// Change sets committed together at most (the rest wait for the next group).
const GROUP_LIMIT: usize = 256;

/// How long a reader that just answered a lone caller looks for its next read before it sleeps.
const READER_SPIN: Duration = Duration::from_micros(50);

/// How long a lone caller looks for its reader's answer before it yields: long enough for a
/// page of 50 records here (~130 µs). A yielded caller is woken by the kernel, which on a VM
/// took ~70 µs — half the cost of a page read alone (measured: 210 µs with a 20 µs spin, 139 µs
/// with this one). Callers never spin while other reads are in flight.
const CALLER_SPIN: Duration = Duration::from_micros(150);

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;
type WriteJob = Box<dyn FnOnce(&mut Connection) -> Result<()> + Send>;

enum Job {
    Read(ReadJob),
    Write(WriteJob, oneshot::Sender<Result<()>>),
}

/// The queues to the threads that own a store's connections. Dropping it stops the threads
/// once their queues are empty, which closes the connections.
#[derive(Debug)]
pub(crate) struct Connections {
    /// One queue per reader thread; a read goes to the reader with the fewest waiting.
    readers: Vec<Reader>,
    writes: Sender<Job>,
    /// Reads sent and not yet answered (file databases): the spins below only pay off for a
    /// lone caller, and under load they would take CPU from the work.
    in_flight: Option<Arc<AtomicUsize>>,
    pub(crate) location: String,
}

#[derive(Debug)]
struct Reader {
    queue: Sender<Job>,
    /// Reads sent to this reader and not yet answered.
    pending: AtomicUsize,
}

impl Connections {
    /// Opens a file database in WAL mode, runs `setup` (migrations) on the writer, and starts
    /// the writer's thread and `options.readers` reader threads.
    pub(crate) fn open_file(
        path: &Path,
        options: &SqliteOptions,
        setup: impl FnOnce(&mut Connection) -> Result<()>,
    ) -> Result<Self> {
        let mut writer = open(Some(path), OpenFlags::default(), options)?;
        writer.pragma_update(None, "journal_mode", "WAL").map_err(error::map)?;
        setup(&mut writer)?;
        let flags =
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let readers = (0..options.readers.max(1))
            .map(|_| open(Some(path), flags, options))
            .collect::<Result<Vec<_>>>()?;
        let location = path.display().to_string();
        let (writes, write_queue) = mpsc::channel();
        spawn(&location, "writer", move || serve(writer, write_queue))?;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let readers = readers
            .into_iter()
            .enumerate()
            .map(|(i, conn)| {
                let (queue, jobs) = mpsc::channel();
                let in_flight = in_flight.clone();
                spawn(&location, &format!("reader-{i}"), move || serve_reads(conn, jobs, in_flight))?;
                Ok(Reader { queue, pending: AtomicUsize::new(0) })
            })
            .collect::<Result<_>>()?;
        Ok(Self { readers, writes, in_flight: Some(in_flight), location })
    }

    /// Opens a private in-memory database on one connection (and one thread, for reads and
    /// writes alike), after running `setup` on it.
    pub(crate) fn open_memory(
        options: &SqliteOptions,
        setup: impl FnOnce(&mut Connection) -> Result<()>,
    ) -> Result<Self> {
        let mut conn = open(None, OpenFlags::default(), options)?;
        setup(&mut conn)?;
        let (queue, jobs) = mpsc::channel();
        spawn(":memory:", "connection", move || serve(conn, jobs))?;
        let reader = Reader { queue: queue.clone(), pending: AtomicUsize::new(0) };
        Ok(Self { readers: vec![reader], writes: queue, in_flight: None, location: ":memory:".into() })
    }

    /// Runs `f` on a reader connection, on its thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, mut answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        // The first reader with the fewest reads waiting (a lone caller keeps to the same one).
        let reader =
            self.readers.iter().min_by_key(|r| r.pending.load(Ordering::Relaxed)).ok_or_else(stopped)?;
        let _pending = Counted::enter(&reader.pending);
        let _in_flight = self.in_flight.as_deref().map(Counted::enter);
        let alone = self.in_flight.as_ref().is_some_and(|n| n.load(Ordering::SeqCst) == 1);
        reader.queue.send(Job::Read(job)).map_err(|_| stopped())?;
        // Alone, a point read comes back within microseconds: look for the answer a moment before
        // yielding, which spares this worker a sleep and a wake-up. (Under load the worker does
        // better running other tasks meanwhile.)
        if alone {
            let start = Instant::now();
            'spin: while start.elapsed() < CALLER_SPIN {
                for _ in 0..64 {
                    match answer.try_recv() {
                        Ok(result) => return result,
                        Err(oneshot::error::TryRecvError::Closed) => break 'spin,
                        Err(oneshot::error::TryRecvError::Empty) => std::hint::spin_loop(),
                    }
                }
            }
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the writer connection, on its thread, inside a transaction it may share with
    /// other commits: `f` must apply its changes in a savepoint of its own (see the module).
    /// Answers once the transaction is committed.
    pub(crate) async fn commit<F>(&self, f: F) -> Result<()>
    where
        F: FnOnce(&mut Connection) -> Result<()> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.writes.send(Job::Write(Box::new(f), reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn spawn(location: &str, role: &str, body: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(format!("sqlite-{role}"))
        .spawn(body)
        .map(drop)
        .map_err(|e| Error::Unavailable(format!("cannot start a thread for {location}: {e}").into()))
}

/// A job panicked or a thread is gone: a bug, reported as an internal error.
fn stopped() -> Error {
    tracing::error!("a sqlite connection thread stopped or a job panicked");
    Error::internal("the database connection stopped")
}

/// A reader thread: takes jobs from its queue until it closes. Having just answered a lone
/// caller, it looks for the next job for [`READER_SPIN`] before it sleeps: reads arriving back to
/// back then find it awake, where a sleeping thread takes tens of microseconds to wake on a
/// virtual machine, several times a point read.
fn serve_reads(conn: Connection, jobs: Receiver<Job>, in_flight: Arc<AtomicUsize>) {
    let mut spin = false;
    loop {
        let job = if spin { spin_recv(&jobs) } else { jobs.recv() };
        match job {
            Ok(Job::Read(job)) => run_read(&conn, job),
            Ok(Job::Write(_, reply)) => {
                let _ = reply.send(Err(Error::internal("a write was sent to a reader")));
            }
            Err(_) => return,
        }
        // The caller just answered still counts itself.
        spin = in_flight.load(Ordering::SeqCst) <= 1;
    }
}

fn spin_recv(jobs: &Receiver<Job>) -> std::result::Result<Job, mpsc::RecvError> {
    let start = Instant::now();
    while start.elapsed() < READER_SPIN {
        for _ in 0..64 {
            match jobs.try_recv() {
                Ok(job) => return Ok(job),
                Err(TryRecvError::Disconnected) => return Err(mpsc::RecvError),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
    }
    jobs.recv()
}

/// Counts a read while alive.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A panicking job drops its reply, which its caller sees as an internal error.
fn run_read(conn: &Connection, job: ReadJob) {
    let _ = catch_unwind(AssertUnwindSafe(|| job(conn)));
}

/// The writer's thread (in memory, the only thread): reads run as they come; writes queued
/// together are committed as a group.
fn serve(mut conn: Connection, queue: Receiver<Job>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        let next = match waiting.pop_front() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let first = match next {
            Job::Read(job) => {
                run_read(&conn, job);
                continue;
            }
            Job::Write(job, reply) => (job, reply),
        };
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT {
            match queue.try_recv() {
                Ok(Job::Write(job, reply)) => group.push((job, reply)),
                Ok(read) => {
                    // A read waits for the group, so it never sees writes not yet committed.
                    waiting.push_back(read);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group);
    }
}

/// Commits a group of writes in one immediate transaction; each write runs in its own savepoint
/// (so a failed write rolls back alone), and every caller is answered after the commit.
fn commit_group(conn: &mut Connection, group: Vec<(WriteJob, oneshot::Sender<Result<()>>)>) {
    let mut pending: VecDeque<_> = group.into();
    while !pending.is_empty() {
        // IMMEDIATE takes the write lock up front, so no write fails half-way on a lock upgrade.
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "sqlite: cannot begin a commit");
            for (_, reply) in pending.drain(..) {
                let _ = reply.send(Err(failed(&e.to_string())));
            }
            return;
        }
        let mut done: Vec<(oneshot::Sender<Result<()>>, Result<()>)> = Vec::with_capacity(pending.len());
        while let Some((job, reply)) = pending.pop_front() {
            let result = catch_unwind(AssertUnwindSafe(|| job(conn)))
                .unwrap_or_else(|_| Err(Error::internal("a commit panicked")));
            if conn.is_autocommit() {
                // SQLite rolled the whole transaction back (an I/O error, a full disk): none of
                // the group stands. Those before are told; the rest start a new transaction.
                let _ = reply.send(result.and(Err(failed("the transaction was rolled back"))));
                for (reply, _) in done.drain(..) {
                    let _ = reply.send(Err(failed("the transaction was rolled back")));
                }
                break;
            }
            done.push((reply, result));
        }
        if done.is_empty() {
            continue;
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                for (reply, result) in done {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sqlite: commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                for (reply, _) in done {
                    let _ = reply.send(Err(failed(&e.to_string())));
                }
            }
        }
    }
}

/// A commit that did not happen (the database could not take it).
fn failed(why: &str) -> Error {
    Error::Unavailable(format!("the commit failed: {why}").into())
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
    // Plans must not depend on bound values: SQLite otherwise re-prepares (parses and plans
    // again) a statement at every execution whose `LIMIT ?` or compared values it looked at —
    // every list page did, doubling its cost. No query here relies on a value-dependent plan.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(error::map)?;
    // `rarray(?)`: a search passes the rowids it already found as one parameter.
    rusqlite::vtab::array::load_module(&conn).map_err(error::map)?;
    Ok(conn)
}
