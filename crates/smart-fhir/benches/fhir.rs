//! Benchmarks of the FHIR client: parsing one searchset page (dynamic vs typed), and streaming
//! every Observation of an in-process sandbox over loopback HTTP. See `docs/performance.md`.
//!
//! Run with `cargo bench -p smart-fhir --bench fhir`. One sandbox (the seeded R4 data set with
//! more than 5,000 Observations) is started for the whole run, with a backend-services client
//! (`system/Observation.rs`). The page parsed in the `parse_page` group is a real sandbox page,
//! fetched once at start-up.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use futures_util::StreamExt as _;
use serde_json::Value;
use smart_core::scope::Scopes;
use smart_core::smart_jose::{Algorithm, PrivateKey};
use smart_core::{ClientKeys, ClientRegistration, SmartClient};
use smart_fhir::{FhirClient, Page, Search};
use smart_sandbox::{DEMO_REDIRECT_URI, LaunchDefaults, Sandbox, SandboxConfig};
use tokio::runtime::Runtime;

/// What every benchmark shares: a runtime, the sandbox served on it, a client, and one page.
struct Env {
    runtime: Runtime,
    _sandbox: Sandbox,
    fhir: FhirClient,
    /// One `_count=100` searchset Bundle of Observations, as JSON bytes.
    page: Vec<u8>,
    /// Matches in that page.
    page_entries: usize,
    /// Every Observation in the sandbox (what a full stream yields).
    observations: usize,
}

static ENV: OnceLock<Env> = OnceLock::new();

fn env() -> &'static Env {
    ENV.get_or_init(setup)
}

fn main() {
    let env = env();
    eprintln!(
        "sandbox page: {} bytes, {} Observations; full search: {} Observations",
        env.page.len(),
        env.page_entries,
        env.observations
    );
    divan::main();
}

fn setup() -> Env {
    // Multi-threaded: the sandbox's server tasks and the client run on the same two workers,
    // as they would in one process.
    let runtime = Runtime::new().expect("tokio runtime");
    let (sandbox, fhir) = runtime.block_on(async {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .expect("sandbox starts");
        let fhir = backend_fhir(&sandbox, "system/Observation.rs");
        (sandbox, fhir)
    });
    // Warm-up: data generation, discovery, the backend token, the connection pool.
    let observations = runtime.block_on(count_resources(&fhir, 100));
    assert!(observations > 5_000, "only {observations} Observations");
    // One real page, re-serialised compactly (serde_json keeps key order and number text in
    // this build, so it is the bytes the sandbox rendered, up to whitespace).
    let url = format!("{}/Observation?_count=100", fhir.base());
    let bundle = runtime
        .block_on(fhir.get_json(&url))
        .expect("first page")
        .resource;
    let page = serde_json::to_vec(&bundle).expect("serialises");
    let page_entries = Page::from_bundle(bundle, "Observation")
        .expect("a searchset Bundle")
        .entries
        .len();
    assert_eq!(page_entries, 100);
    Env {
        runtime,
        _sandbox: sandbox,
        fhir,
        page,
        page_entries,
        observations,
    }
}

/// A backend-services client (`private_key_jwt`, ES384) granted `scopes`, and a FHIR client on
/// its token source (as in `tests/support/mod.rs`).
fn backend_fhir(sandbox: &Sandbox, scopes: &str) -> FhirClient {
    let keys = ClientKeys::new(PrivateKey::generate(Algorithm::ES384).expect("key"));
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: "bench".into(),
        auth: smart_sandbox::ClientAuth::PrivateKeyJwt {
            jwks: Some(keys.jwks()),
            jwks_url: None,
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: scopes.into(),
        context: LaunchDefaults::default(),
        grant_types: vec!["client_credentials".into()],
    });
    let registration =
        ClientRegistration::backend(sandbox.fhir_base(), "bench", keys, Scopes::parse(scopes));
    let smart = SmartClient::builder()
        .registration("bench", registration)
        .adapter(Arc::new(smart_adapter_generic::Generic))
        .build()
        .expect("client builds");
    let source = smart
        .backend_token_source("bench", Scopes::parse(scopes))
        .expect("token source");
    FhirClient::new(smart.http().clone(), Arc::new(source))
}

/// Streams every Observation through `FhirClient::resources` with `_count=count`.
async fn count_resources(fhir: &FhirClient, count: u32) -> usize {
    let search = Search::new("Observation").count(count);
    let mut stream = std::pin::pin!(fhir.resources(&search));
    let mut seen = 0;
    while let Some(resource) = stream.next().await {
        let resource = resource.expect("page");
        debug_assert_eq!(resource["resourceType"], "Observation");
        seen += 1;
    }
    seen
}

/// Parsing one 100-entry searchset page of sandbox Observations.
#[divan::bench_group(sample_count = 200)]
mod parse_page {
    use super::*;

    fn counters<'a, 'b>(bencher: Bencher<'a, 'b>) -> Bencher<'a, 'b> {
        let env = env();
        bencher
            .counter(BytesCount::new(env.page.len()))
            .counter(ItemsCount::new(env.page_entries))
    }

    /// `serde_json::from_slice::<Value>` of the whole Bundle.
    #[divan::bench]
    fn json_value(bencher: Bencher<'_, '_>) {
        let page = &env().page;
        counters(bencher)
            .bench(|| serde_json::from_slice::<Value>(divan::black_box(page)).unwrap());
    }

    /// The dynamic path as the client runs it: parse, then `Page::from_bundle` (the matches as
    /// `Vec<Value>`).
    #[divan::bench]
    fn json_page(bencher: Bencher<'_, '_>) {
        let page = &env().page;
        counters(bencher).bench(|| {
            let bundle: Value = serde_json::from_slice(divan::black_box(page)).unwrap();
            Page::from_bundle(bundle, "Observation").unwrap().entries
        });
    }

    /// The typed path as `FhirClient::search::<Observation>` runs it: parse, `Page::from_bundle`,
    /// then `TypedResource::from_json` (Value → fhirbolt Element → Observation, strict) for each
    /// match.
    #[cfg(feature = "r4")]
    #[divan::bench]
    fn typed_observations(bencher: Bencher<'_, '_>) {
        use smart_fhir::TypedResource as _;
        use smart_fhir::r4::resources::Observation;
        let page = &env().page;
        counters(bencher).bench(|| {
            let bundle: Value = serde_json::from_slice(divan::black_box(page)).unwrap();
            Page::from_bundle(bundle, "Observation")
                .unwrap()
                .entries
                .into_iter()
                .map(Observation::from_json)
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        });
    }

    /// Only the typed conversion: already-parsed matches (`Vec<Value>`, cloned outside the
    /// timing) to `Vec<Observation>`.
    ///
    /// Both typed benchmarks call `TypedResource::from_json`, which is compiled once inside
    /// smart-fhir. The generic `r4::from_json::<Observation>` runs the same code but is
    /// instantiated again in the calling crate, with fhirbolt's deserializers for every R4
    /// resource (an Observation's `contained` can hold any of them): it made this benchmark
    /// take about 6 minutes to compile in release instead of about 20 seconds.
    #[cfg(feature = "r4")]
    #[divan::bench]
    fn typed_conversion_only(bencher: Bencher<'_, '_>) {
        use smart_fhir::TypedResource as _;
        use smart_fhir::r4::resources::Observation;
        let env = env();
        let bundle: Value = serde_json::from_slice(&env.page).unwrap();
        let entries = Page::from_bundle(bundle, "Observation").unwrap().entries;
        counters(bencher)
            .with_inputs(|| entries.clone())
            .bench_values(|entries| {
                entries
                    .into_iter()
                    .map(Observation::from_json)
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap()
            });
    }
}

/// The normalisation pass alone on the sandbox page's matches (part of both typed benchmarks
/// above): the cost of order independence and the vendor checks on real server output.
#[cfg(feature = "r4")]
#[divan::bench(sample_count = 200)]
fn parse_page_normalise_only(bencher: Bencher<'_, '_>) {
    use smart_fhir::{ParseMode, r4};
    let env = env();
    let bundle: Value = serde_json::from_slice(&env.page).unwrap();
    let entries = Page::from_bundle(bundle, "Observation").unwrap().entries;
    bencher
        .counter(BytesCount::new(env.page.len()))
        .counter(ItemsCount::new(env.page_entries))
        .with_inputs(|| entries.clone())
        .bench_values(|entries| {
            entries
                .into_iter()
                .map(|v| r4::normalize(v, ParseMode::Lenient).unwrap())
                .collect::<Vec<_>>()
        });
}

/// Every Observation of the sandbox, end to end over loopback HTTP (the sandbox's search and
/// rendering included), one page in memory at a time.
#[divan::bench_group(sample_count = 15, sample_size = 1)]
mod stream_all {
    use super::*;

    fn stream_json(bencher: Bencher<'_, '_>, count: u32) {
        let env = env();
        bencher
            .counter(ItemsCount::new(env.observations))
            .bench(|| {
                let seen = env.runtime.block_on(count_resources(&env.fhir, count));
                assert_eq!(seen, env.observations);
            });
    }

    #[cfg(feature = "r4")]
    fn stream_typed(bencher: Bencher<'_, '_>, count: u32) {
        use smart_fhir::r4::resources::Observation;
        let env = env();
        bencher
            .counter(ItemsCount::new(env.observations))
            .bench(|| {
                env.runtime.block_on(async {
                    let search = Search::new("Observation").count(count);
                    let mut stream = std::pin::pin!(env.fhir.search::<Observation>(&search));
                    let mut seen = 0;
                    while let Some(observation) = stream.next().await {
                        divan::black_box(observation.expect("typed page"));
                        seen += 1;
                    }
                    assert_eq!(seen, env.observations);
                })
            });
    }

    /// `FhirClient::resources`, `_count=100`.
    #[divan::bench]
    fn resources_count_100(bencher: Bencher<'_, '_>) {
        stream_json(bencher, 100);
    }

    /// `FhirClient::resources`, `_count=200` (the sandbox's maximum).
    #[divan::bench]
    fn resources_count_200(bencher: Bencher<'_, '_>) {
        stream_json(bencher, 200);
    }

    /// `FhirClient::search::<Observation>`, `_count=100`.
    #[cfg(feature = "r4")]
    #[divan::bench]
    fn typed_search_count_100(bencher: Bencher<'_, '_>) {
        stream_typed(bencher, 100);
    }

    /// `FhirClient::search::<Observation>`, `_count=200`.
    #[cfg(feature = "r4")]
    #[divan::bench]
    fn typed_search_count_200(bencher: Bencher<'_, '_>) {
        stream_typed(bencher, 200);
    }
}

/// The 510 official R4 examples (`tests/fixtures/fhir-r4-examples/`, 4.3 MB), all at once:
/// JSON only, the normalisation pass alone, fhirbolt's element model alone (on normalised
/// input), and the whole typed conversion (both). The difference between `typed` and
/// `element_model_only` is what order independence and the vendor checks cost.
#[cfg(feature = "r4")]
#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod fixture_set {
    use super::*;
    use smart_fhir::ParseMode;
    use smart_fhir::r4;

    struct Fixtures {
        bytes: Vec<Vec<u8>>,
        total_bytes: usize,
        values: Vec<Value>,
        normalised: Vec<Value>,
    }

    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();

    fn fixtures() -> &'static Fixtures {
        FIXTURES.get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/fhir-r4-examples");
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            paths.sort();
            let bytes: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
            let values: Vec<Value> = bytes
                .iter()
                .map(|b| serde_json::from_slice(b).unwrap())
                .collect();
            let normalised = values
                .iter()
                .map(|v| r4::normalize(v.clone(), ParseMode::Strict).unwrap().0)
                .collect();
            Fixtures {
                total_bytes: bytes.iter().map(Vec::len).sum(),
                bytes,
                values,
                normalised,
            }
        })
    }

    fn counters<'a, 'b>(bencher: Bencher<'a, 'b>) -> Bencher<'a, 'b> {
        let f = fixtures();
        bencher
            .counter(BytesCount::new(f.total_bytes))
            .counter(ItemsCount::new(f.bytes.len()))
    }

    /// `serde_json::from_slice::<Value>` of every file (the dynamic path).
    #[divan::bench]
    fn json_value(bencher: Bencher<'_, '_>) {
        let f = fixtures();
        counters(bencher).bench(|| {
            f.bytes
                .iter()
                .map(|b| serde_json::from_slice::<Value>(b).unwrap())
                .collect::<Vec<_>>()
        });
    }

    /// The normalisation pass alone, strict, on parsed values (cloned outside the timing).
    #[divan::bench]
    fn normalise_only(bencher: Bencher<'_, '_>) {
        let f = fixtures();
        counters(bencher)
            .with_inputs(|| f.values.clone())
            .bench_values(|values| {
                values
                    .into_iter()
                    .map(|v| r4::normalize(v, ParseMode::Strict).unwrap())
                    .collect::<Vec<_>>()
            });
    }

    /// fhirbolt's element model alone, on already-normalised values.
    #[divan::bench]
    fn element_model_only(bencher: Bencher<'_, '_>) {
        let f = fixtures();
        counters(bencher)
            .with_inputs(|| f.normalised.clone())
            .bench_values(|values| {
                values
                    .into_iter()
                    .map(|v| r4::element_model_only(v).unwrap())
                    .collect::<Vec<_>>()
            });
    }

    /// The typed conversion as the client runs it (normalisation, then the element model),
    /// strict, on parsed values.
    #[divan::bench]
    fn typed_strict(bencher: Bencher<'_, '_>) {
        let f = fixtures();
        counters(bencher)
            .with_inputs(|| f.values.clone())
            .bench_values(|values| {
                values
                    .into_iter()
                    .map(|v| r4::resource_from_json(v, ParseMode::Strict).unwrap())
                    .collect::<Vec<_>>()
            });
    }

    /// Bytes to typed resources: `from_slice`, then the lenient conversion (the read default).
    #[divan::bench]
    fn bytes_to_typed_lenient(bencher: Bencher<'_, '_>) {
        let f = fixtures();
        counters(bencher).bench(|| {
            f.bytes
                .iter()
                .map(|b| {
                    let v: Value = serde_json::from_slice(b).unwrap();
                    r4::resource_from_json(v, ParseMode::Lenient).unwrap()
                })
                .collect::<Vec<_>>()
        });
    }
}
