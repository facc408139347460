//! Store operation latencies through the sealing layer, per backend.
//!
//! `cargo bench -p smart-store-open --bench store_ops`. PostgreSQL and Redis are taken from
//! `SMART_TEST_POSTGRES_URL` / `SMART_TEST_REDIS_URL` (defaults as in the trials); SQLite is a
//! temporary file. Before the timings, the sizes of sealed records are printed (for sizing).

mod support;

use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;
use smart_core::store::{SessionId, Store, testsuite};
use smart_store::{HashedKey, Keyring, Namespace, SealedStore};
use support::{BACKENDS, runtime, store};

fn main() {
    let sealed = SealedStore::new(
        Arc::new(smart_store::MemoryBackend::new()),
        Keyring::ephemeral(),
    );
    let key = HashedKey::of("size");
    let session = testsuite::sample_session(&"a".repeat(40));
    let launch = testsuite::sample_pending_launch(600);
    println!(
        "record_size session={} pending_launch={}",
        sealed
            .seal(Namespace::Session, &key, &session)
            .expect("seal")
            .len(),
        sealed
            .seal(Namespace::PendingLaunch, &key, &launch)
            .expect("seal")
            .len()
    );
    divan::main();
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn load_session(bencher: Bencher<'_, '_>, backend: &str) {
    let store = store(backend);
    let id = SessionId::generate();
    runtime()
        .block_on(store.insert_session(&id, &testsuite::sample_session("a")))
        .expect("insert");
    bencher.bench_local(|| {
        runtime()
            .block_on(store.load_session(&id))
            .expect("load")
            .expect("present")
    });
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn compare_and_swap_session(bencher: Bencher<'_, '_>, backend: &str) {
    let store = store(backend);
    let id = SessionId::generate();
    let session = testsuite::sample_session("a");
    let mut version = runtime()
        .block_on(store.insert_session(&id, &session))
        .expect("insert");
    bencher.bench_local(|| {
        version = runtime()
            .block_on(store.compare_and_swap_session(&id, version, &session))
            .expect("cas");
    });
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn insert_session(bencher: Bencher<'_, '_>, backend: &str) {
    let store = store(backend);
    let session = testsuite::sample_session("a");
    bencher
        .with_inputs(SessionId::generate)
        .bench_local_values(|id| {
            runtime()
                .block_on(store.insert_session(&id, &session))
                .expect("insert")
        });
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn put_and_take_pending_launch(bencher: Bencher<'_, '_>, backend: &str) {
    let store = store(backend);
    let launch = testsuite::sample_pending_launch(600);
    bencher
        .with_inputs(|| SessionId::generate().as_str().to_owned())
        .bench_local_values(|state| {
            runtime().block_on(async {
                store
                    .put_pending_launch(&state, &launch)
                    .await
                    .expect("put");
                store
                    .take_pending_launch(&state)
                    .await
                    .expect("take")
                    .expect("present")
            })
        });
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn acquire_and_release_lease(bencher: Bencher<'_, '_>, backend: &str) {
    let store = store(backend);
    let id = SessionId::generate();
    bencher.bench_local(|| {
        runtime().block_on(async {
            let lease = store
                .try_acquire_lease(&id, "bench", Duration::from_secs(30))
                .await
                .expect("acquire")
                .expect("free");
            store.release_lease(&lease).await.expect("release")
        })
    });
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn put_pending_launch(bencher: Bencher<'_, '_>, backend: &str) {
    let store = store(backend);
    let launch = testsuite::sample_pending_launch(600);
    bencher
        .with_inputs(|| SessionId::generate().as_str().to_owned())
        .bench_local_values(|state| {
            runtime()
                .block_on(store.put_pending_launch(&state, &launch))
                .expect("put")
        });
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn take_pending_launch(bencher: Bencher<'_, '_>, backend: &str) {
    let store = store(backend);
    let launch = testsuite::sample_pending_launch(600);
    bencher
        .with_inputs(|| {
            // Put outside the timing: only the atomic take is measured.
            let state = SessionId::generate().as_str().to_owned();
            runtime()
                .block_on(store.put_pending_launch(&state, &launch))
                .expect("put");
            state
        })
        .bench_local_values(|state| {
            runtime()
                .block_on(store.take_pending_launch(&state))
                .expect("take")
                .expect("present")
        });
}
