//! # smart-fhir: the FHIR REST client for SMART apps and backend services
//!
//! After a SMART launch an app holds a token for one FHIR server, and everything it does next is
//! FHIR REST: read the patient, search observations page by page, write a resource back. This
//! crate does that part, and takes care of what each app would otherwise get subtly wrong:
//!
//! - **tokens**: a token is taken from a [`BearerSource`](smart_core::BearerSource) per request
//!   (refreshed ahead of expiry by `smart-core`); a `401` causes exactly one refresh — shared by
//!   all concurrent requests that saw it — and one retry; a `403` never does;
//! - **where the token goes**: only to URLs under the FHIR base it was issued for, including
//!   server-supplied `next` links ([`FhirError::ForeignUrl`] otherwise, with nothing sent);
//! - **paging**: [`FhirClient::pages`] and [`FhirClient::resources`] are streams that follow the
//!   server's opaque `next` links, one page in memory at a time, and separate matches from
//!   `_include`d resources and from `OperationOutcome` warnings ([`Page`]);
//! - **errors** that say what to do ([`FhirError`]), with the server's `OperationOutcome`;
//! - **retries** of idempotent requests on `429`/`5xx`/timeouts with backoff, jitter and
//!   `Retry-After` ([`RetryPolicy`]); never of a plain create or a batch.
//!
//! Two ways to handle resources:
//!
//! - the **dynamic path** (`*_json` methods, [`serde_json::Value`]) always works, for any
//!   resource a server returns, vendor extensions and all;
//! - the **typed path** (`FhirClient::read`, `FhirClient::search`, … over
//!   `TypedResource`) uses fhirbolt's generated models, behind the features `r4` (default),
//!   `r4b` and `r5`. fhirbolt is confined to this crate because it is heavy to compile, turns on
//!   serde_json's `arbitrary_precision` and `preserve_order` for the whole build, and has
//!   deserialization bugs that this crate routes around (see `TypedResource` and
//!   `docs/fhir-client.md`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use futures_util::TryStreamExt as _;
//! use smart_fhir::{FhirClient, FhirError, Search};
//!
//! # async fn run(smart: smart_core::SmartClient, session: smart_core::SessionId)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let auth = Arc::new(smart.session_bearer(&session).await?);
//! let fhir = FhirClient::new(smart.http().clone(), auth);
//!
//! // Typed read (feature r4).
//! # #[cfg(feature = "r4")]
//! let patient = fhir.read::<smart_fhir::r4::resources::Patient>("pat-1").await?;
//!
//! // Every lab Observation of the patient, across all pages.
//! let labs = Search::new("Observation").patient("pat-1").param("category", "laboratory");
//! let all: Vec<serde_json::Value> = fhir.resources(&labs).try_collect().await?;
//!
//! // Optimistic locking: update only if nobody changed it since the read.
//! let mut json = fhir.read_json("Patient", "pat-1").await?;
//! json.resource["active"] = true.into();
//! match fhir.update_json(&json.resource, json.etag.as_ref()).await {
//!     Err(FhirError::PreconditionFailed { .. }) => { /* re-read and reapply */ }
//!     other => { other?; }
//! }
//! # Ok(()) }
//! ```

mod client;
mod error;
mod mode;
mod retry;
#[cfg(feature = "schema")]
pub mod schema;
mod search;
mod versioned;

#[cfg(any(feature = "r4", feature = "r4b", feature = "r5"))]
mod typed;

#[cfg(feature = "r4")]
#[path = "typed/r4.rs"]
pub mod r4;
#[cfg(feature = "r4b")]
#[path = "typed/r4b.rs"]
pub mod r4b;
#[cfg(feature = "r5")]
#[path = "typed/r5.rs"]
pub mod r5;

pub use crate::client::FhirClient;
pub use crate::error::{ErrorBody, FhirError};
pub use crate::mode::ParseMode;
pub use crate::retry::{MAX_RETRY_AFTER, RetryPolicy};
#[cfg(feature = "schema")]
pub use crate::schema::{Coercion, Extras, ParseReport};
pub use crate::search::{Page, Search};
#[cfg(any(feature = "r4", feature = "r4b", feature = "r5"))]
pub use crate::typed::{Typed, TypedPage, TypedResource};
pub use crate::versioned::{ETag, Versioned};

/// The `fhirbolt` crate this crate's typed models come from, for its other APIs (XML, the
/// element model).
#[cfg(any(feature = "r4", feature = "r4b", feature = "r5"))]
pub use fhirbolt;
