//! # smart-core: the SMART App Launch 2.2 client protocol
//!
//! This crate implements what an app must do to connect to an Electronic Health Record through
//! SMART on FHIR: discover the server's authorization endpoints, start an EHR or standalone
//! launch with PKCE, validate the redirect, exchange the code for tokens that carry the launch
//! context, and refresh them — safely across tasks and processes.
//!
//! It knows nothing of web frameworks, databases or vendors. Those plug in through three traits:
//!
//! - [`http::HttpClient`] sends requests (default: [`http::ReqwestHttpClient`], feature `reqwest`);
//! - [`store::Store`] keeps pending launches and sessions (default: [`store::MemoryStore`]);
//! - [`quirks::VendorQuirks`] adapts each protocol step to an EHR vendor (the generic,
//!   spec-exact adapter is the `smart-adapter-generic` crate).
//!
//! [`SmartClient`] ties them together. A typical web app calls
//! [`SmartClient::begin_ehr_launch`] on its launch URL, redirects the browser to the returned
//! [`AuthorizationRequest`], and calls [`SmartClient::complete_launch`] on its redirect URI:
//!
//! ```no_run
//! use std::sync::Arc;
//! use smart_core::{CallbackParams, ClientRegistration, SmartClient};
//!
//! # #[derive(Debug)] struct Generic; impl smart_core::quirks::VendorQuirks for Generic { fn name(&self) -> &str { "generic" } }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = SmartClient::builder()
//!     .registration(
//!         "ehr",
//!         ClientRegistration::public("https://ehr.example.org/fhir", "my-app", "https://app.example/callback"),
//!     )
//!     .adapter(Arc::new(Generic)) // smart_adapter_generic::Generic in a real app
//!     .build()?;
//!
//! // GET /launch?iss=…&launch=…
//! let request = client.begin_ehr_launch("https://ehr.example.org/fhir", "xyz123").await?;
//! // redirect the browser to request.url (or serve request.html_form() for POST) …
//!
//! // … after setting request.browser_binding() as a cookie (docs/guides/browser-binding.md)
//!
//! // GET /callback?code=…&state=…, with the cookie read back into `binding`
//! # let binding = request.browser_binding().clone();
//! let callback = CallbackParams::from_query("code=…&state=…").with_browser_binding(binding);
//! let done = client.complete_launch(&callback).await?;
//! println!("patient in context: {:?}", done.session.context.patient);
//! # Ok(()) }
//! ```
//!
//! Scopes come from the [`smart_scopes`] crate, re-exported as [`scope`].

pub mod adapter_choice;
pub mod backend;
pub mod bearer;
pub mod client;
pub mod client_auth;
pub mod client_keys;
pub mod config;
pub mod descriptor;
pub mod discovery;
pub mod error;
pub mod error_kind;
pub mod headless;
pub mod http;
pub mod identity;
pub mod introspection;
pub mod protocol;
pub mod protocol_strings;
pub mod quirks;
pub mod registration;
pub mod secret;
pub mod server_text;
pub mod smart_configuration;
pub mod store;
pub mod token;

pub use smart_scopes as scope;

pub use crate::adapter_choice::{AUTO_ADAPTER, AdapterChoice, SPEC_ADAPTER};
pub use crate::backend::{BackendError, BackendToken, BackendTokenSource};
pub use crate::bearer::{Bearer, BearerError, BearerSource, Renewal, SessionBearer, UserActivity};
pub use crate::client::{
    AuthorizationRequest, CallbackParams, CompletedLaunch, EhrLaunch, LaunchError, RefreshError,
    RefreshOptions, SmartClient, SmartClientBuilder, StandaloneLaunch,
};
pub use crate::client_auth::ClientKeys;
pub use crate::config::{ClientAuth, ClientRegistration, SmartConfig};
pub use crate::discovery::{Capability, Discovered, DiscoverySource, SmartConfiguration};
pub use crate::error::{ConfigError, DiscoveryError, OAuthError, OAuthErrorCode, TokenError};
pub use crate::error_kind::ErrorKind;
pub use crate::identity::{FhirUser, RefreshWarning, VerifiedIdentity};
pub use crate::introspection::{Introspection, IntrospectionAuth, IntrospectionError};
pub use crate::protocol_strings::{
    AdapterName, ClientId, FhirBase, IssuerPattern, LaunchState, RedirectUri,
};
pub use crate::secret::BrowserBinding;
pub use crate::store::{MemoryStore, Session, SessionId, Store};
pub use crate::token::{FhirContextItem, LaunchContext, TokenSet};
pub use smart_jose;

/// `bytes` random bytes from the OS, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

// The README's and docs/' code blocks are compiled by the `smart-docs-tests` crate.
