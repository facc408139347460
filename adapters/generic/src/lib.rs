//! # smart-adapter-generic: SMART App Launch 2.2 exactly as written
//!
//! The adapter for FHIR servers that follow the specification: the SMART reference sandbox,
//! HAPI-based servers, Medplum, the embedded `smart-sandbox`, and any EHR without a dedicated
//! adapter. It overrides no hook of [`VendorQuirks`], so every step uses the spec behaviour in
//! [`smart_core::quirks::spec`]:
//!
//! | Step | Behaviour |
//! |---|---|
//! | Discovery | `Accept: application/json`; `.well-known/smart-configuration`, then CapabilityStatement `oauth-uris`; nothing patched |
//! | Authorize | every spec parameter, `aud` = FHIR base byte for byte; POST only when `authorize-post` is advertised and the URL is long (or the registration asks) |
//! | Client auth | `client_secret_basic` with RFC 6749 §2.3.1 form-urlencoding; public clients send `client_id` |
//! | Token response | parsed as is (the core already accepts `bearer` in any case and string booleans) |
//! | FHIR | `Accept: application/fhir+json` |
//! | Errors | OAuth error codes as the server sent them |
//!
//! It is also the reference for adapter authors: a vendor adapter is this type plus the hooks
//! where the vendor departs from the spec.
//!
//! ```
//! use std::sync::Arc;
//! use smart_core::{ClientRegistration, SmartClient};
//!
//! let client = SmartClient::builder()
//!     .registration("ehr", ClientRegistration::public("https://ehr.example.org/fhir", "app", "https://app.example/cb"))
//!     .adapter(Arc::new(smart_adapter_generic::Generic))
//!     .build()
//!     .expect("valid configuration");
//! # let _ = client;
//! ```

use smart_core::descriptor::{AdapterDescriptor, Recognition, SandboxProfile, default_adapter};
use smart_core::quirks::VendorQuirks;

/// The registry name of this adapter, as used in registrations (`adapter = "generic"`).
pub const NAME: &str = "generic";

/// The spec-exact adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generic;

/// This adapter, described for the registry (`smart-adapters`), the adapter × profile matrix,
/// the CLI and CI: no options, chosen when no other adapter recognises a server, emulated by the
/// sandbox's `generic` profile.
pub static DESCRIPTOR: AdapterDescriptor = AdapterDescriptor::new(
    NAME,
    "SMART App Launch 2.2 as specified",
    default_adapter::<Generic>,
)
.with_recognition(Recognition::Fallback)
.with_sandbox_profile(SandboxProfile::Builtin("generic"));

impl VendorQuirks for Generic {
    fn name(&self) -> &str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use smart_core::quirks::{
        AuthorizeMethod, BasicAuthEncoding, HookContext, LaunchKind, VendorQuirks,
    };
    use smart_core::{Capability, OAuthError, OAuthErrorCode, SmartConfiguration};

    use super::Generic;

    #[test]
    fn uses_spec_headers() {
        let mut h = HeaderMap::new();
        Generic.discovery_headers(&HookContext::new("https://ehr.example/fhir"), &mut h);
        assert_eq!(h["accept"], "application/json");
        let mut h = HeaderMap::new();
        Generic
            .fhir()
            .fhir_request_headers(&HookContext::new("https://ehr.example/fhir"), &mut h);
        assert_eq!(h["accept"], "application/fhir+json");
        assert_eq!(
            Generic.policy().basic_auth_encoding,
            BasicAuthEncoding::FormUrlEncoded
        );
    }

    #[test]
    fn posts_only_where_advertised() {
        let mut config = SmartConfiguration::new("https://ehr/token");
        assert_eq!(
            Generic.authorize_method(
                &HookContext::new("https://ehr.example/fhir").with_launch_kind(LaunchKind::Ehr),
                &config,
                Some(AuthorizeMethod::Post),
                10
            ),
            AuthorizeMethod::Get,
            "POST must not be used unless authorize-post is advertised"
        );
        config.capabilities.push(Capability::AuthorizePost);
        assert_eq!(
            Generic.authorize_method(
                &HookContext::new("https://ehr.example/fhir").with_launch_kind(LaunchKind::Ehr),
                &config,
                Some(AuthorizeMethod::Post),
                10
            ),
            AuthorizeMethod::Post
        );
        assert_eq!(
            Generic.authorize_method(
                &HookContext::new("https://ehr.example/fhir").with_launch_kind(LaunchKind::Ehr),
                &config,
                None,
                10
            ),
            AuthorizeMethod::Get
        );
        assert_eq!(
            Generic.authorize_method(
                &HookContext::new("https://ehr.example/fhir").with_launch_kind(LaunchKind::Ehr),
                &config,
                None,
                5000
            ),
            AuthorizeMethod::Post,
            "long URLs go by POST when the server allows it"
        );
    }

    #[test]
    fn descriptor_matches_the_adapter() {
        assert_eq!(smart_testkit::check_descriptor(&super::DESCRIPTOR), Ok(()));
        assert!(super::DESCRIPTOR.generic_breaks.is_empty());
    }

    #[test]
    fn keeps_error_codes() {
        let e = OAuthError {
            code: OAuthErrorCode::InvalidGrant,
            description: None,
            uri: None,
        };
        assert_eq!(
            Generic.classify_oauth_error(
                &HookContext::new("https://ehr.example/fhir"),
                Some(400),
                e.clone()
            ),
            e
        );
    }
}
