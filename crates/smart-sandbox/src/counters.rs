//! Request counters: the public snapshot ([`Counters`]) and the atomics the
//! handlers bump ([`CounterCells`]). A leaf module: every area counts its
//! requests without importing the shared state.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of request counters, for tests that assert how often a client
/// talked to each endpoint (e.g. that discovery was cached).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Requests to `/auth/authorize` (GET and POST).
    pub authorize_requests: u64,
    /// Requests to `/auth/token`, any grant type, including rejected ones.
    pub token_requests: u64,
    /// Token requests with `grant_type=refresh_token` (also counted in
    /// `token_requests`).
    pub refresh_requests: u64,
    /// Requests to `/fhir/.well-known/smart-configuration`.
    pub discovery_requests: u64,
    /// Requests to `/fhir/metadata`.
    pub metadata_requests: u64,
    /// Other requests under `/fhir` (every FHIR interaction, including
    /// rejected ones and injected faults).
    pub fhir_requests: u64,
    /// FHIR reads, vreads and instance histories (part of `fhir_requests`).
    pub fhir_reads: u64,
    /// FHIR searches, page fetches and `$everything` (part of
    /// `fhir_requests`).
    pub fhir_searches: u64,
    /// FHIR creates, updates, deletes, and batch/transaction requests (part
    /// of `fhir_requests`, including rejected ones).
    pub fhir_writes: u64,
    /// FHIR requests answered with an injected 429 or 503.
    pub fhir_faults: u64,
    /// HTTP fetches of registered client JWKS URLs (cache hits are not
    /// counted), to check that the `Cache-Control` of a JWKS is honoured.
    pub jwks_fetches: u64,
    /// Requests to the sandbox's own JWKS, `GET /auth/jwks`.
    pub oidc_jwks_requests: u64,
    /// Requests to `/auth/introspect`, including rejected ones.
    pub introspection_requests: u64,
}

/// Request counters, one atomic per endpoint family.
#[derive(Default)]
pub(crate) struct CounterCells {
    pub(crate) authorize: AtomicU64,
    pub(crate) token: AtomicU64,
    pub(crate) refresh: AtomicU64,
    pub(crate) discovery: AtomicU64,
    pub(crate) metadata: AtomicU64,
    pub(crate) fhir: AtomicU64,
    pub(crate) fhir_reads: AtomicU64,
    pub(crate) fhir_searches: AtomicU64,
    pub(crate) fhir_writes: AtomicU64,
    pub(crate) fhir_faults: AtomicU64,
    pub(crate) jwks_fetches: AtomicU64,
    pub(crate) oidc_jwks: AtomicU64,
    pub(crate) introspection: AtomicU64,
}

impl CounterCells {
    pub(crate) fn bump(cell: &AtomicU64) {
        cell.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        Counters {
            authorize_requests: self.authorize.load(Ordering::Relaxed),
            token_requests: self.token.load(Ordering::Relaxed),
            refresh_requests: self.refresh.load(Ordering::Relaxed),
            discovery_requests: self.discovery.load(Ordering::Relaxed),
            metadata_requests: self.metadata.load(Ordering::Relaxed),
            fhir_requests: self.fhir.load(Ordering::Relaxed),
            fhir_reads: self.fhir_reads.load(Ordering::Relaxed),
            fhir_searches: self.fhir_searches.load(Ordering::Relaxed),
            fhir_writes: self.fhir_writes.load(Ordering::Relaxed),
            fhir_faults: self.fhir_faults.load(Ordering::Relaxed),
            jwks_fetches: self.jwks_fetches.load(Ordering::Relaxed),
            oidc_jwks_requests: self.oidc_jwks.load(Ordering::Relaxed),
            introspection_requests: self.introspection.load(Ordering::Relaxed),
        }
    }
}
