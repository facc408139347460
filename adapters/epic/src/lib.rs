//! # smart-adapter-epic: SMART App Launch 2.2 against Epic
//!
//! Epic implements SMART App Launch closely, but a client written to the letter of the
//! specification still breaks against it in a dozen small ways: discovery answers XML, the
//! advertised scope list is five entries long, a long EHR-launch URL yields an HTTP 500, the
//! token response carries strings for booleans and echoes `state`, the id_token comes from
//! another issuer than the FHIR base, and searches without a patient come back empty with a
//! warning buried in the Bundle. This crate is the
//! [`VendorQuirks`](smart_core::quirks::VendorQuirks) implementation that absorbs
//! those differences, so that the core stays vendor-neutral and an app's code stays the same
//! across EHRs.
//!
//! Each departure is a catalogued [`Quirk`] ([`quirks()`]), tied to the row of the quirk × vendor
//! table it comes from, its source and how sure we are of it, and each has a unit test that
//! fails if its handling is removed:
//!
//! | Step | Epic behaviour handled |
//! |---|---|
//! | Discovery | `Accept: application/json`; `Epic-Client-ID` when configured; `scopes_supported` ignored |
//! | Authorize | POST for EHR launches where `authorize-post` is advertised; never for standalone launches |
//! | Client auth | Basic credentials form-urlencoded before base64; 240 s client assertions |
//! | Token response | `token_type` and string `need_patient_banner` normalised; echoed `state` dropped; [`EpicContext`] |
//! | Identity | id_token issuer `…/oauth2` (optionally the pre-2020 `…/oauth2/token`) |
//! | FHIR | `Accept: application/fhir+json`; warnings for searches Epic will not answer |
//! | Errors | `unauthorized_client` explained (backend client not mapped to an Epic user) |
//!
//! What the core already does right for Epic (`aud` = `iss` verbatim, PKCE S256, a 32-byte
//! `state`, `launch` added only to EHR launches, keeping the old refresh token, a tolerant scope
//! parser, `fhirUser` read from its last two segments) is not repeated here.
//!
//! ```no_run
//! use std::sync::Arc;
//! use smart_core::{ClientRegistration, SmartClient};
//! use smart_adapter_epic::Epic;
//!
//! let client = SmartClient::builder()
//!     .registration(
//!         "epic-sandbox",
//!         ClientRegistration::public(
//!             "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4",
//!             "my-non-production-client-id",
//!             "https://app.example/callback",
//!         )
//!         .with_adapter(smart_adapter_epic::NAME),
//!     )
//!     .adapter(Arc::new(Epic::new().with_client_id("my-non-production-client-id")))
//!     .build()
//!     .expect("valid configuration");
//! # let _ = client;
//! ```

mod adapter;
mod catalogue;
mod context;
mod recognize;
mod search;

pub use adapter::Epic;
pub use catalogue::{Confidence, Quirk};
pub use context::EpicContext;

use smart_core::descriptor::{
    AdapterDescriptor, AdapterOption, FlowStep, GenericBreak, Recognition, SandboxProfile,
    default_adapter,
};

/// The registry name of this adapter, as used in registrations (`adapter = "epic"`).
pub const NAME: &str = "epic";

/// This adapter, described for the registry (`smart-adapters`), the adapter × profile matrix,
/// the CLI and CI: the sandbox's `epic` profile emulates Epic, and the spec-exact generic adapter
/// fails only the standalone launch there (Epic answers a POSTed standalone authorization with an
/// error; quirk `epic-authorize-post-ehr-only`).
pub static DESCRIPTOR: AdapterDescriptor = AdapterDescriptor::new(NAME, "Epic", default_adapter::<Epic>)
    .with_options(&[
        AdapterOption::new(
            "client_id_header",
            "Sent as the `Epic-Client-ID` header on discovery, so Epic returns the endpoints registered for the client",
            "my-non-production-client-id",
        ),
        AdapterOption::new(
            "accept_legacy_token_issuer",
            "Also accept id_tokens issued by the pre-2020 `…/oauth2/token` issuer",
            "true",
        ),
    ])
    .with_recognition(Recognition::Evidence(
        "an Epic host (*.epic.com, *.epichosted.com), an /api/FHIR/ base path, the Epic-only scope in scopes_supported, or Epic in the CapabilityStatement",
    ))
    .with_sandbox_profile(SandboxProfile::Builtin("epic"))
    .with_generic_breaks(&[GenericBreak::new(
        FlowStep::StandaloneLaunch,
        "epic-authorize-post-ehr-only",
    )])
    .with_catalogue(catalogue::QUIRKS);

/// The Epic quirks this adapter handles, in row order of the quirk × vendor table.
pub fn quirks() -> &'static [Quirk] {
    DESCRIPTOR.catalogue
}

#[cfg(test)]
mod tests {
    use smart_core::quirks::VendorQuirks;

    #[test]
    fn registry_name() {
        assert_eq!(super::Epic::new().name(), super::NAME);
        assert!(!super::quirks().is_empty());
    }

    #[test]
    fn descriptor_matches_the_adapter_and_its_catalogue() {
        assert_eq!(smart_testkit::check_descriptor(&super::DESCRIPTOR), Ok(()));
    }
}
