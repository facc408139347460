//! The in-memory store passes the public store conformance suite.

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_store_suite() {
    smart_core::store::testsuite::run_all(Arc::new(smart_core::MemoryStore::new())).await;
}
