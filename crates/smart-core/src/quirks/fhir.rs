//! [`FhirQuirks`]: vendor behaviour at the FHIR API, apart from the OAuth hooks.
//!
//! The FHIR client (`smart-fhir`) is a separate crate from the OAuth core, and its hooks run on
//! every API call rather than once per launch. Keeping them in their own trait lets `smart-fhir`
//! depend on exactly what it calls, and lets an adapter with no FHIR-level differences say
//! nothing at all.

use std::fmt;

use http::HeaderMap;

use super::HookContext;
use super::spec;

/// Vendor behaviour at the FHIR API. All defaults follow FHIR R4 and SMART App Launch 2.2.
///
/// An adapter implements it on its own type and returns itself from
/// [`VendorQuirks::fhir`](super::VendorQuirks::fhir).
pub trait FhirQuirks: Send + Sync + fmt::Debug {
    /// Headers for a FHIR API request (the bearer token is added after). Default:
    /// `Accept: application/fhir+json`.
    fn fhir_request_headers(&self, _ctx: &HookContext<'_>, headers: &mut HeaderMap) {
        spec::fhir_request_headers(headers);
    }

    /// Soft checks on a FHIR search before it is sent (e.g. parameters a vendor requires, page
    /// sizes it caps); each message is logged as a warning by the FHIR client. Default: none.
    fn search_warnings(
        &self,
        _ctx: &HookContext<'_>,
        _resource_type: &str,
        _params: &[(String, String)],
    ) -> Vec<String> {
        Vec::new()
    }
}

/// The specification's FHIR behaviour, for adapters with no FHIR-level differences.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecFhir;

impl FhirQuirks for SpecFhir {}
