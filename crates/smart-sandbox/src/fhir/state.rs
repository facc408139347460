//! The FHIR area's state: what the synthetic data set is generated from, and
//! the resource store, generated on first use. Composed into the shared
//! state by [`crate::state::Shared`]; imports nothing above it.

use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use crate::data;
use crate::fhir::store::ResourceStore;

/// The parameters of the synthetic data set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataConfig {
    pub(crate) seed: u64,
    pub(crate) patient_count: usize,
    /// The day the history ends (exclusive), in days since 1970-01-01.
    pub(crate) as_of_day: i64,
}

/// A fault injected into one FHIR request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FhirFault {
    /// 429 with `Retry-After` in seconds or as an HTTP-date.
    RateLimited { secs: u64, http_date: bool },
    /// 503.
    Unavailable,
    /// 500.
    ServerError,
    /// 504.
    GatewayTimeout,
}

/// The synthetic data set and its resource store.
pub(crate) struct FhirState {
    /// What the synthetic data set is generated from.
    pub(crate) data: DataConfig,
    /// The FHIR resources, generated on first use (most sandboxes in tests
    /// never touch FHIR, and generation is the slowest part of a start).
    resources: OnceLock<RwLock<ResourceStore>>,
}

impl FhirState {
    /// A state whose data set is generated on first use.
    pub(crate) fn new(data: DataConfig) -> FhirState {
        FhirState {
            data,
            resources: OnceLock::new(),
        }
    }

    /// The FHIR resource store, generating the data set on first use.
    pub(crate) fn resources(&self) -> &RwLock<ResourceStore> {
        self.resources.get_or_init(|| {
            let started = Instant::now();
            let d = self.data;
            let store = ResourceStore::generate(d.seed, d.patient_count, d.as_of_day);
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                patients = d.patient_count,
                "generated the synthetic FHIR data set"
            );
            RwLock::new(store)
        })
    }

    /// Whether `id` names a patient: one of the generated `pat-1` …
    /// `pat-N` before the store exists, afterwards a live Patient in it.
    pub(crate) fn patient_exists(&self, id: &str) -> bool {
        match self.resources.get() {
            Some(store) => store
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .live("Patient", id)
                .is_some(),
            None => data::builtin_patient_number(id, self.data.patient_count).is_some(),
        }
    }
}
