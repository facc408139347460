//! What the store benchmarks share: one tokio runtime, and each backend's sealed store opened
//! once (SQLite in a temporary directory; PostgreSQL and Redis from `SMART_TEST_POSTGRES_URL` /
//! `SMART_TEST_REDIS_URL`, defaults as in the trials).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use smart_core::store::SessionId;
use smart_store::{Keyring, SealedStore, StoreConfig};

/// Every backend, as divan arguments.
pub const BACKENDS: &[&str] = &["memory", "sqlite", "postgres", "redis"];

/// The runtime every benchmark blocks on: two workers, as many as the machine's cores.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn scratch_dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

/// The store URL of `backend`.
pub fn url(backend: &str) -> String {
    match backend {
        "memory" => "memory:".into(),
        "sqlite" => format!(
            "sqlite://{}",
            scratch_dir().path().join("bench.db").display()
        ),
        "postgres" => std::env::var("SMART_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        _ => std::env::var("SMART_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    }
}

/// The sealed store of `backend`, opened (migrated, key-checked) on first use.
pub fn store(backend: &str) -> Arc<SealedStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<SealedStore>>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    let mut stores = stores.lock().unwrap_or_else(|e| e.into_inner());
    stores
        .entry(backend.to_owned())
        .or_insert_with(|| {
            // Key-check records stay in shared databases: a fresh key id for every run.
            let id = format!("bench-{}", &SessionId::generate().as_str()[..10]);
            let material = Keyring::generate_material(&id).expect("material");
            let key_file = scratch_dir().path().join(format!("{backend}.keys"));
            std::fs::write(&key_file, material).expect("key file");
            let config = StoreConfig {
                key_file: Some(key_file),
                ..StoreConfig::new(url(backend))
            };
            runtime()
                .block_on(smart_store_open::open(&config))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .clone()
}
