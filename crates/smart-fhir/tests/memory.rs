//! Streaming a search holds one page at a time: the peak heap while streaming every page of
//! more than 5,000 Observations is no larger than while streaming the first few pages.
//!
//! A counting global allocator measures live heap bytes. The sandbox runs in the same process,
//! so its (transient) per-request allocations are counted too; both runs pay them equally.

// A counting allocator is the one place the project needs `unsafe`: it only forwards to the
// system allocator.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use smart_fhir::Search;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Streams `pages` pages (all when `None`) and returns (resources seen, peak live bytes above
/// the level when streaming started).
async fn stream_and_measure(fhir: &smart_fhir::FhirClient, pages: Option<usize>) -> (usize, usize) {
    let mut search = Search::new("Observation").count(100);
    if let Some(n) = pages {
        search = search.page_limit(n);
    }
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let mut stream = Box::pin(fhir.resources(&search));
    let mut seen = 0usize;
    while let Some(resource) = stream.next().await {
        let resource = resource.expect("page");
        assert!(resource.get("resourceType").is_some());
        seen += 1;
    }
    (seen, PEAK.load(Ordering::Relaxed).saturating_sub(start))
}

#[tokio::test(flavor = "current_thread")]
async fn streaming_memory_does_not_grow_with_the_result_count() {
    let sandbox = support::sandbox().await;
    let fhir = support::backend_fhir(&sandbox, "system/Observation.rs");
    // Warm up: data generation, connection pool, discovery, token.
    let _ = stream_and_measure(&fhir, Some(2)).await;

    let (few, few_peak) = stream_and_measure(&fhir, Some(5)).await;
    let (all, all_peak) = stream_and_measure(&fhir, None).await;
    assert_eq!(few, 500);
    assert!(
        all > 5_000,
        "the search covers more than 5,000 observations: {all}"
    );
    eprintln!("peak above baseline: 5 pages {few_peak} B, {all} resources {all_peak} B");
    // Holding every resource would need well over 5 MB (a sandbox Observation is ~1 KB of JSON
    // and several times that as serde_json::Value). One page at a time stays near the first
    // pages' peak whatever the count.
    assert!(
        all_peak < few_peak * 2 + 512 * 1024,
        "peak grew with the result count: {few_peak} B for 500 resources, {all_peak} B for {all}"
    );
}
