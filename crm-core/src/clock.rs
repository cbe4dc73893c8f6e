//! Time and id generation, injectable so tests and property runs are reproducible (invariant 10).

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use uuid::Uuid;

/// The source of "now". Times are UTC, truncated to microseconds so every store round-trips them.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The source of new record ids.
pub trait IdGenerator: Send + Sync + Debug + 'static {
    /// A fresh, unique id. The default is UUID v7, so ids sort roughly by creation time.
    fn new_id(&self) -> Uuid;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// Random, time-ordered UUID v7 ids.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7;

impl IdGenerator for UuidV7 {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Truncates a time to whole microseconds, the precision every store keeps.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// A clock that starts at a fixed instant and advances one millisecond per reading, plus any
/// time a test skips with [`SteppingClock::advance`].
///
/// Deterministic, and still strictly increasing, so orderings by time are stable in tests.
/// Clones share the same time, so a test can keep one to move the clock of a [`crate::Crm`].
#[derive(Debug, Clone)]
pub struct SteppingClock {
    start: DateTime<Utc>,
    ticks: Arc<AtomicU64>,
    skipped_ms: Arc<AtomicU64>,
}

impl SteppingClock {
    /// A clock whose first reading is `start`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self { start: truncate_to_micros(start), ticks: Arc::default(), skipped_ms: Arc::default() }
    }

    /// Moves the clock forward (token expiry, lockout windows).
    pub fn advance(&self, by: std::time::Duration) {
        self.skipped_ms.fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let skipped = self.skipped_ms.load(Ordering::Relaxed);
        self.start + TimeDelta::milliseconds((tick + skipped) as i64)
    }
}

/// Deterministic UUID v7-shaped ids from a seed and a counter: increasing, unique, reproducible.
#[derive(Debug)]
pub struct SequentialIds {
    seed: u64,
    counter: AtomicU64,
}

impl SequentialIds {
    /// Ids derived from `seed`; two generators with the same seed yield the same sequence.
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: AtomicU64::new(1) }
    }
}

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // 48-bit "timestamp" = counter keeps ids ordered; the seed fills the random bits.
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&n.to_be_bytes()[2..]);
        bytes[8..].copy_from_slice(&self.seed.to_be_bytes());
        uuid::Builder::from_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid()
    }
}
