//! The in-memory store passes the public store conformance suite.

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_store_suite() {
    smart_core::store::testsuite::run_all(Arc::new(smart_core::MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_ends_idle_and_old_sessions() {
    use smart_core::store::SessionLifetime;
    use std::time::Duration;
    let lifetime = SessionLifetime {
        absolute: Some(Duration::from_millis(1500)),
        idle: Some(Duration::from_millis(400)),
    };
    let store = smart_core::MemoryStore::new().with_session_lifetime(lifetime);
    smart_core::store::testsuite::session_lifetime_is_enforced(&store, lifetime).await;
}

#[tokio::test]
async fn store_errors_say_whether_they_are_temporary() {
    use smart_core::store::StoreError;
    let busy = StoreError::Driver {
        backend: "sqlite",
        operation: "load",
        temporary: true,
        source: "database is locked".into(),
    };
    assert!(busy.is_temporary());
    assert!(std::error::Error::source(&busy).is_some());
    assert!(!StoreError::Corrupt("x".into()).is_temporary());
    assert!(!StoreError::VersionConflict { current: 2 }.is_temporary());
}
