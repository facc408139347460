//! `MemoryStore` pending launches are bounded, swept when expired, and cheap to insert
//! (issue 8 item 8).

use std::time::{Duration, Instant};

use smart_core::MemoryStore;
use smart_core::store::testsuite::sample_pending_launch;
use smart_core::store::{DEFAULT_PENDING_LAUNCH_LIMIT, Store};
use smart_core::token::now_unix;

#[tokio::test]
async fn pending_launches_are_capped_by_evicting_the_oldest() {
    let store = MemoryStore::with_pending_launch_limit(100);
    for i in 0..150 {
        store
            .put_pending_launch(&format!("state-{i}"), &sample_pending_launch(600))
            .await
            .expect("put");
    }
    assert_eq!(store.pending_launch_count(), 100, "the cap holds");
    for i in 0..50 {
        assert!(
            store
                .take_pending_launch(&format!("state-{i}"))
                .await
                .expect("take")
                .is_none(),
            "state-{i} is among the oldest, evicted"
        );
    }
    for i in 50..150 {
        assert!(
            store
                .take_pending_launch(&format!("state-{i}"))
                .await
                .expect("take")
                .is_some(),
            "state-{i} is among the newest, kept"
        );
    }
    assert_eq!(store.pending_launch_count(), 0);
}

#[tokio::test]
async fn the_default_store_enforces_the_documented_cap() {
    let store = MemoryStore::new();
    let launch = sample_pending_launch(600);
    for i in 0..DEFAULT_PENDING_LAUNCH_LIMIT + 5 {
        store
            .put_pending_launch(&format!("state-{i}"), &launch)
            .await
            .expect("put");
    }
    assert_eq!(store.pending_launch_count(), DEFAULT_PENDING_LAUNCH_LIMIT);
}

#[tokio::test]
async fn expired_pending_launches_are_swept_on_insert() {
    let store = MemoryStore::new();
    let mut expired = sample_pending_launch(0);
    expired.expires_at = now_unix().saturating_sub(1);
    for i in 0..500 {
        store
            .put_pending_launch(&format!("old-{i}"), &expired)
            .await
            .expect("put");
    }
    store
        .put_pending_launch("fresh", &sample_pending_launch(600))
        .await
        .expect("put");
    assert_eq!(
        store.pending_launch_count(),
        1,
        "only the unexpired launch is left"
    );
}

#[tokio::test]
async fn taken_launches_do_not_accumulate_bookkeeping() {
    // Put-and-take many times: the store must stay small (the insertion-order queue is compacted)
    // and still honour the cap for live launches.
    let store = MemoryStore::with_pending_launch_limit(10);
    for i in 0..10_000 {
        let state = format!("s-{i}");
        store
            .put_pending_launch(&state, &sample_pending_launch(600))
            .await
            .expect("put");
        assert!(
            store
                .take_pending_launch(&state)
                .await
                .expect("take")
                .is_some()
        );
    }
    assert_eq!(store.pending_launch_count(), 0);
}

#[tokio::test]
async fn inserting_is_not_quadratic() {
    // 50,000 live pending launches. With a scan of every stored launch on each insert (the old
    // behaviour) this is 1.25 billion entry visits, tens of seconds in a debug build; O(1)
    // amortised inserts take well under a second. The bound is deliberately generous.
    let store = MemoryStore::with_pending_launch_limit(100_000);
    let launch = sample_pending_launch(600);
    let started = Instant::now();
    for i in 0..50_000 {
        store
            .put_pending_launch(&format!("state-{i}"), &launch)
            .await
            .expect("put");
    }
    let elapsed = started.elapsed();
    assert_eq!(store.pending_launch_count(), 50_000);
    assert!(
        elapsed < Duration::from_secs(5),
        "50,000 inserts took {elapsed:?}"
    );
}
