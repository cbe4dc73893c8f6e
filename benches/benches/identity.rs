//! The cost of one password hash with the default Argon2id parameters (m=19456 KiB, t=2, p=1).
//!
//! `cargo bench -p crm-benches --bench identity`

use criterion::{Criterion, criterion_group, criterion_main};
use crm_core::identity::{Argon2Params, PasswordHasher};

fn hash(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let hasher = PasswordHasher::new(Argon2Params::default(), 2);
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    group.bench_function("hash m=19456 t=2 p=1", |b| {
        b.to_async(&rt).iter(|| async { hasher.hash("correct horse battery staple").await.expect("hash") })
    });
    group.finish();
}

criterion_group!(benches, hash);
criterion_main!(benches);
