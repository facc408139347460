//! The per-request cost of a FHIR call with a fresh token, per store backend.
//!
//! `cargo bench -p smart-store-open --bench fhir_calls`. One in-process sandbox on 127.0.0.1;
//! for each backend (memory, SQLite in a temporary file, PostgreSQL and Redis as in the trials)
//! one standalone launch, then:
//!
//! - `fhir_read`: a `Patient` read as an app makes it per request — `session_bearer` (a bearer
//!   source per request), `bearer()`, a GET over loopback HTTP — with the client's bearer cache
//!   (the default): the store is not read while the token is fresh;
//! - `fhir_read_store_each_call`: the same with the cache off (capacity 0): one sealed store read
//!   (and decryption) per call, as before the cache;
//! - `bearer` / `bearer_store_each_call`: only the token lookup, without the HTTP request.
//!
//! Divan prints time per call and calls per second (`items/s`). The sandbox's server tasks share
//! the two-worker runtime with the client.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use smart_core::scope::Scopes;
use smart_core::store::{SessionId, Store};
use smart_core::{BearerSource, ClientRegistration, SmartClient, StandaloneLaunch};
use smart_sandbox::{DEMO_REDIRECT_URI, Sandbox, SandboxConfig};
use support::{BACKENDS, runtime, store};

const SCOPES: &str = "launch/patient patient/*.rs offline_access";

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        runtime()
            .block_on(Sandbox::start(SandboxConfig::default()))
            .expect("sandbox starts")
    })
}

/// A client of the sandbox over `store`; `cache` false turns the bearer cache off.
fn client(store: Arc<dyn Store>, cache: bool) -> SmartClient {
    let base = sandbox().fhir_base();
    let mut builder = SmartClient::builder()
        .registration(
            "public",
            ClientRegistration::public(&base, "demo-public", DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse(SCOPES)),
        )
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .store(store);
    if !cache {
        builder = builder.bearer_cache_capacity(0, Duration::ZERO);
    }
    builder.build().expect("client builds")
}

/// A launched session: its client, id and patient.
struct Launched {
    client: SmartClient,
    session: SessionId,
    patient: String,
}

fn launched(backend: &str, cache: bool) -> Launched {
    let client = client(store(backend), cache);
    runtime().block_on(async {
        let request = client
            .begin_standalone_launch(&sandbox().fhir_base(), StandaloneLaunch::default())
            .await
            .expect("begin");
        let callback =
            smart_core::headless::authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
                .await
                .expect("sandbox redirects back");
        let done = client.complete_launch(&callback).await.expect("complete");
        Launched {
            client,
            patient: done.session.context.patient.clone().expect("patient"),
            session: done.session_id,
        }
    })
}

/// One FHIR read as an app makes it per request.
async fn read_patient(launched: &Launched) {
    let source = launched
        .client
        .session_bearer(&launched.session)
        .await
        .expect("bearer source");
    let bearer = source.bearer().await.expect("bearer");
    let request = http::Request::get(format!(
        "{}/Patient/{}",
        source.fhir_base(),
        launched.patient
    ))
    .header(
        "authorization",
        format!("Bearer {}", bearer.access_token.expose_secret()),
    )
    .body(Vec::new())
    .expect("request");
    let response = launched
        .client
        .http()
        .execute(request)
        .await
        .expect("FHIR read");
    assert_eq!(response.status(), 200);
}

fn bench_reads(bencher: Bencher<'_, '_>, backend: &str, cache: bool) {
    let launched = launched(backend, cache);
    // Warm the connection pool (and the cache) outside the timing.
    runtime().block_on(read_patient(&launched));
    bencher
        .counter(ItemsCount::new(1usize))
        .bench_local(|| runtime().block_on(read_patient(&launched)));
}

fn bench_bearer(bencher: Bencher<'_, '_>, backend: &str, cache: bool) {
    let launched = launched(backend, cache);
    let source = runtime()
        .block_on(launched.client.session_bearer(&launched.session))
        .expect("bearer source");
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        runtime()
            .block_on(source.bearer())
            .expect("bearer")
            .generation
    });
}

fn main() {
    divan::main();
}

#[divan::bench(args = BACKENDS, sample_count = 100)]
fn fhir_read(bencher: Bencher<'_, '_>, backend: &str) {
    bench_reads(bencher, backend, true);
}

#[divan::bench(args = BACKENDS, sample_count = 100)]
fn fhir_read_store_each_call(bencher: Bencher<'_, '_>, backend: &str) {
    bench_reads(bencher, backend, false);
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn bearer(bencher: Bencher<'_, '_>, backend: &str) {
    bench_bearer(bencher, backend, true);
}

#[divan::bench(args = BACKENDS, sample_count = 200)]
fn bearer_store_each_call(bencher: Bencher<'_, '_>, backend: &str) {
    bench_bearer(bencher, backend, false);
}
