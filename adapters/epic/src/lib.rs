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

/// The registry name of this adapter, as used in registrations (`adapter = "epic"`).
pub const NAME: &str = "epic";

/// The Epic quirks this adapter handles, in row order of the quirk × vendor table.
pub fn quirks() -> &'static [Quirk] {
    catalogue::QUIRKS
}

#[cfg(test)]
mod tests {
    use smart_core::quirks::VendorQuirks;

    #[test]
    fn registry_name() {
        assert_eq!(super::Epic::new().name(), super::NAME);
        assert!(!super::quirks().is_empty());
    }
}
