//! Shared set-up for the benchmarks: the data, seeded tenants on SQLite and Postgres (reused
//! between runs, keyed by a seed version and the schema), and the raw-driver baselines that do
//! the same SQL work as the library in the same run.
//!
//! `CRM_BENCH_QUICK=1` shrinks sizes and measurement times so that the whole
//! `cargo bench -p crm-benches` is a smoke run of a few minutes (see `BENCHMARKS.md`).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use crm_core::model::{NewLead, NewTenant, NewUser};
use crm_core::{Crm, Scope};

pub mod data;
pub mod pg;
pub mod sqlite;

/// Bump when [`data`] or the seeding changes: seeded databases of another version are rebuilt.
pub const SEED_VERSION: u32 = 2;

/// Whether `CRM_BENCH_QUICK` asks for a smoke run.
pub fn quick() -> bool {
    std::env::var("CRM_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Criterion settings: 1 s warm-up and 3 s measurement (quick: 0.3 s and 0.7 s, 10 samples).
pub fn criterion() -> Criterion {
    let c = Criterion::default().configure_from_args();
    if quick() {
        c.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(700))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
    }
}

/// Tenant sizes of the listing and search benches: 10k and 1M leads (quick: 10k and 100k).
pub fn list_sizes() -> Vec<usize> {
    if quick() { vec![10_000, 100_000] } else { vec![10_000, 1_000_000] }
}

/// Import sizes: 100k measured by criterion (10 samples) and 1M timed once per side
/// (quick: 5k, and 20k once).
pub fn import_sizes() -> (usize, usize) {
    if quick() { (5_000, 20_000) } else { (100_000, 1_000_000) }
}

/// A multi-threaded runtime with two workers, like a server on this machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Human-readable size: `10k`, `1M`.
pub fn label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Where seeded databases are kept between runs (`CRM_BENCH_DATA_DIR`, else
/// `target/crm-bench-data`).
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CRM_BENCH_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| {
        // Benches run from the package directory; the workspace's target is one level up.
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").join("target")
        });
        target.join("crm-bench-data")
    });
    std::fs::create_dir_all(&dir).expect("bench data dir");
    dir
}

/// FNV-1a of the given texts, as 8 hex digits: seeded databases are keyed by it, so a schema
/// change rebuilds them.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", h as u32)
}

/// The page cursor the library hands out after `id` (its layout is private to crm-core: a
/// version byte 1, then the id); benches use it to start a page in the middle of a large list.
pub fn cursor_after(id: uuid::Uuid) -> String {
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Creates the bench tenant (slug `bench`) and returns its owner's scope.
pub async fn create_tenant(crm: &Crm) -> Scope {
    crm.create_tenant(NewTenant {
        name: "Bench".into(),
        slug: "bench".into(),
        owner: NewUser { email: "owner@bench.example".into(), name: "Owner".into() },
    })
    .await
    .expect("tenant")
    .owner_scope
}

/// The bench tenant's owner scope in an existing database, found through the store the bench
/// opened (the `Crm` hands out no raw store).
pub async fn tenant_scope(crm: &Crm, store: &dyn crm_core::Store) -> Scope {
    let tenant = store.tenant_by_slug("bench").await.expect("tenant").expect("bench tenant");
    let owner = store.user_by_email("owner@bench.example").await.expect("user").expect("owner");
    crm.scope_for(tenant.id, owner.id).await.expect("scope")
}

/// Seeds leads `0..n` through the library's bulk import, in chunks to bound memory.
pub async fn seed_leads(crm: &Crm, scope: &Scope, n: usize) {
    const CHUNK: usize = 50_000;
    let start = std::time::Instant::now();
    for from in (0..n).step_by(CHUNK) {
        let rows = data::new_leads(from..(from + CHUNK).min(n));
        let report =
            crm.import::<crm_core::model::Lead>(scope, rows, Default::default()).await.expect("seed");
        assert!(report.errors.is_empty(), "seed rows are valid: {:?}", report.errors.first());
    }
    eprintln!("seeded {n} leads in {:.1} s", start.elapsed().as_secs_f64());
}

/// The lead every create benchmark inserts (numbered, so rows differ).
pub fn new_lead(i: usize) -> NewLead {
    data::fields(i).new_lead()
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("crm-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prints a one-off timing of the library beside the raw baseline (for sizes too large for
/// criterion's ten samples), in a form `benches/report.sh` picks up.
pub fn report_once(name: &str, crm: Duration, raw: Duration, rows: usize) {
    let per_s = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "ONCE {name}: crm {:.2} s ({:.0} rows/s), raw {:.2} s ({:.0} rows/s), ratio {:.2}x",
        crm.as_secs_f64(),
        per_s(crm),
        raw.as_secs_f64(),
        per_s(raw),
        raw.as_secs_f64() / crm.as_secs_f64()
    );
}
