//! # smart-adapter-cerner: SMART App Launch 2.2 against Oracle Health (Cerner Millennium)
//!
//! Oracle Health's Millennium platform implements SMART App Launch with a handful of rules a
//! spec-exact client trips over: wildcard scopes are silently dropped, a long scope list makes the token
//! too big for a header, refresh is missing from the advertised grant types although it works,
//! refreshing more than once a minute may be throttled, the id_token comes from a per-identity-
//! provider issuer that discovery does not name, DSTU2 bases want another media type, and most
//! searches fail with a plain-text 400 without a patient. This crate is the
//! [`VendorQuirks`](smart_core::quirks::VendorQuirks) implementation that absorbs those
//! differences, so the core stays vendor-neutral and an app's code stays the same across EHRs.
//!
//! Each departure is a catalogued [`Quirk`] ([`quirks()`]), tied to the row of the quirk × vendor
//! table it comes from, its source and how sure we are of it, and each has a unit test that
//! fails if its handling is removed:
//!
//! | Step | Oracle Health behaviour handled |
//! |---|---|
//! | Discovery | `Accept` for both JSON and the FHIR media type (DSTU2-aware); `refresh_token` added to `grant_types_supported` |
//! | Scopes | wildcards expanded per resource type (narrowed to the persona's `scopes_supported`), in the registration's SMART v1 or v2 grammar (`scope_version`); warnings for >50 scopes and for `launch/patient` on the provider persona; scopes dropped from the grant reported (core) |
//! | Refresh | at most one proactive refresh a minute; `active_at` sent for `online_access` sessions when the app reports the user's activity; the original refresh token kept (core) |
//! | Token response | [`CernerContext`]: `active_ttl`; undocumented extras (`user`, `username`) stay untyped |
//! | Identity | id_token issuer `{issuer}/oidc/idsps/{idsp}/` |
//! | FHIR | `application/fhir+json` (or the DSTU2 `application/json+fhir`); warnings for missing required parameters and `_count` above the maximum |
//! | Errors | a refresh `invalid_grant` explained (suspended, or unused three months: open `error_uri` to re-approve); `client-persona-mismatch` explained |
//!
//! What an integrator must know about Oracle Health, each fact with its source and the date it
//! was checked, is in `docs/vendors/oracle-health.md`; every catalogue row points at a section
//! of it.
//!
//! What the core already does right for Oracle Health (`aud` on every request, keeping
//! `error_uri`, a tolerant scope parser that strips the `http://smarthealthit.org/FHIR/scopes/`
//! prefix, keying everything by the full tenant base URL) is not repeated here.
//!
//! ```no_run
//! use std::sync::Arc;
//! use smart_core::{ClientRegistration, SmartClient};
//! use smart_adapter_cerner::Cerner;
//!
//! let client = SmartClient::builder()
//!     .registration(
//!         "oracle-sandbox",
//!         ClientRegistration::public(
//!             "https://fhir-ehr-code.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
//!             "my-console-client-id",
//!             "https://app.example/callback",
//!         )
//!         .with_adapter(smart_adapter_cerner::NAME),
//!     )
//!     .adapter(Arc::new(Cerner::new()))
//!     .build()
//!     .expect("valid configuration");
//! # let _ = client;
//! ```

mod adapter;
mod catalogue;
mod context;
mod errors;
mod recognize;
mod scopes;
mod search;

pub use adapter::{Cerner, ScopeVersion};
pub use catalogue::{Confidence, Quirk};
pub use context::CernerContext;

use smart_core::descriptor::{
    AdapterDescriptor, AdapterOption, FlowStep, GenericBreak, Recognition, SandboxProfile,
    default_adapter,
};

/// The registry name of this adapter, as used in registrations (`adapter = "cerner"`).
pub const NAME: &str = "cerner";

/// This adapter, described for the registry (`smart-adapters`), the adapter × profile matrix,
/// the CLI and CI: the sandbox's `cerner` profile emulates Oracle Health, and the spec-exact
/// generic adapter fails three steps there, each explained by a catalogued quirk.
pub static DESCRIPTOR: AdapterDescriptor =
    AdapterDescriptor::new(NAME, "Oracle Health (Cerner Millennium)", default_adapter::<Cerner>)
        .with_options(&[
            AdapterOption::new(
                "resource_types",
                "The resource types a wildcard scope expands to (default: the persona's scopes_supported)",
                "[\"Patient\", \"Observation\"]",
            ),
            AdapterOption::new(
                "scope_warning_threshold",
                "Warn when a launch requests more scopes than this (default 50)",
                "50",
            ),
            AdapterOption::new(
                "scope_version",
                "The SMART version the registration was made for (\"v1\" or \"v2\"): wildcard expansions use its grammar, as a v2 registration silently drops v1 scopes (default: the wildcard's grammar)",
                "\"v2\"",
            ),
            AdapterOption::new(
                "dstu2_media_type",
                "Send the DSTU2 media type `application/json+fhir` to FHIR endpoints",
                "false",
            ),
        ])
        .with_recognition(Recognition::Evidence(
            "an Oracle Health host (*.cerner.com, *.stagingcerner.com, *.sandboxcerner.com), a Cerner authorization server in the SMART configuration, or Cerner in the CapabilityStatement",
        ))
        .with_sandbox_profile(SandboxProfile::Builtin("cerner"))
        .with_generic_breaks(&[
            // (Wildcard scopes are dropped silently with a successful token, as Oracle Health
            // documents, so the generic adapter's launch completes with fewer scopes than it
            // asked for; the launch outcome reports them as dropped. Not a break of a step.)
            // id_tokens come from a per-identity-provider issuer discovery does not name.
            GenericBreak::new(FlowStep::Identity, "cerner-id-token-issuer"),
            // A refresh within a minute of the last is throttled.
            GenericBreak::new(FlowStep::Refresh, "cerner-refresh-throttle"),
        ])
        .with_catalogue(catalogue::QUIRKS);

/// The Oracle Health quirks this adapter handles, in row order of the quirk × vendor table.
pub fn quirks() -> &'static [Quirk] {
    DESCRIPTOR.catalogue
}

#[cfg(test)]
mod tests {
    use smart_core::quirks::VendorQuirks;

    #[test]
    fn registry_name() {
        assert_eq!(super::Cerner::new().name(), super::NAME);
        assert!(!super::quirks().is_empty());
    }

    #[test]
    fn descriptor_matches_the_adapter_and_its_catalogue() {
        assert_eq!(smart_testkit::check_descriptor(&super::DESCRIPTOR), Ok(()));
    }
}
