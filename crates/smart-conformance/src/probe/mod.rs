//! The server probe: does a SMART server behave as the specification says, seen from outside?
//!
//! Integrators onboarding an EHR need to know where the server departs from SMART App Launch
//! 2.2 before their app meets it in production. The probe plays a client that does everything
//! right, and then one that does each thing wrong (a `plain` challenge, a replayed code, a
//! wrong `aud`, an unauthenticated refresh, a replayed `jti` …), and reports how the server
//! answered as numbered checks ([`checks`]) with their references and levels.
//!
//! Why the raw transport: the framework's `SmartClient` is tolerant by design (it repairs
//! vendor deviations), which would hide exactly what the probe must see. Every request here is
//! built by hand and sent through a [`HttpClient`], which never follows redirects and caps the
//! body; every answer is treated as hostile (sizes capped, quotes escaped and shortened).
//!
//! The authorization step needs a user's approval; an [`Approver`] plays the browser
//! ([`RedirectApprover`] works against servers that approve automatically or with a lone
//! consent form). When no code can be had, the checks that need one are skipped with the
//! reason, not failed.
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! use smart_conformance::probe::{AppClient, ProbeTarget, RedirectApprover, probe};
//!
//! let http = smart_core::http::ReqwestHttpClient::new().map_err(|e| e.to_string())?;
//! let target = ProbeTarget::new(
//!     "https://ehr.example/fhir",
//!     AppClient::public("my-app", "https://app.example/callback"),
//! );
//! let results = probe(&target, &http, &RedirectApprover).await;
//! assert!(!results.is_empty());
//! # Ok(()) }
//! ```

mod approve;
mod backend;
pub mod checks;
mod discovery;
mod launch;
mod runner;
mod sandbox;
mod vendor;
mod wire;

use std::fmt;

use smart_core::http::HttpClient;
use smart_jose::PrivateKey;

use crate::model::CheckResult;

pub use approve::{Approver, Authorization, MAX_STEPS, RedirectApprover};
pub use sandbox::{
    SANDBOX_SCOPES, probe_sandbox, probe_sandbox_profiles, sandbox_profiles, start_probe_sandbox,
};

/// How an app client authenticates at the token endpoint.
#[derive(Clone)]
pub enum Credential {
    /// A public client: `client_id` in the body, nothing else.
    None,
    /// A confidential symmetric client: HTTP Basic with the secret.
    Secret(String),
    /// A confidential asymmetric client: a signed assertion (`private_key_jwt`).
    Key(PrivateKey),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::Secret(_) => f.write_str("Secret(<redacted>)"),
            Credential::Key(k) => write!(f, "Key(kid {})", k.kid()),
        }
    }
}

/// An app registered with the server for the authorization-code flow.
#[derive(Debug, Clone)]
pub struct AppClient {
    /// The registered `client_id`.
    pub client_id: String,
    /// A registered redirect URI (the probe never connects to it).
    pub redirect_uri: String,
    /// How it authenticates.
    pub credential: Credential,
}

impl AppClient {
    /// A public app.
    ///
    /// ```
    /// let app = smart_conformance::probe::AppClient::public("my-app", "https://app.example/cb");
    /// assert!(!app.is_confidential());
    /// ```
    pub fn public(client_id: impl Into<String>, redirect_uri: impl Into<String>) -> Self {
        AppClient {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            credential: Credential::None,
        }
    }

    /// A confidential app with `credential`.
    ///
    /// ```
    /// use smart_conformance::probe::{AppClient, Credential};
    /// let app = AppClient::confidential("my-app", "https://app.example/cb", Credential::Secret("s".into()));
    /// assert!(app.is_confidential());
    /// ```
    pub fn confidential(
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        credential: Credential,
    ) -> Self {
        AppClient {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            credential,
        }
    }

    /// Whether the app authenticates (secret or key).
    pub fn is_confidential(&self) -> bool {
        !matches!(self.credential, Credential::None)
    }
}

/// A backend-services client (`client_credentials` with a signed assertion).
#[derive(Debug, Clone)]
pub struct BackendClient {
    /// The registered `client_id`.
    pub client_id: String,
    /// Its private key (the server holds the public half).
    pub key: PrivateKey,
    /// Scopes to request, e.g. `system/Patient.rs`.
    pub scopes: String,
}

/// What to probe, and as whom.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The FHIR base URL.
    pub fhir_base: String,
    /// The app used for the launch checks (confidential, ideally, so that client
    /// authentication can be checked too).
    pub app: AppClient,
    /// Another registered app, for the checks that a code or refresh token is bound to its
    /// client; those are skipped without one.
    pub other_app: Option<AppClient>,
    /// A backend client, for the backend-services checks; skipped without one.
    pub backend: Option<BackendClient>,
    /// Scopes requested in launches. They should include `launch/patient`, `openid fhirUser`,
    /// `offline_access` and at least two resource scopes for every check to run.
    pub scopes: String,
}

impl ProbeTarget {
    /// A target with the default launch scopes ([`DEFAULT_SCOPES`]), no second app and no
    /// backend client.
    pub fn new(fhir_base: impl Into<String>, app: AppClient) -> Self {
        ProbeTarget {
            fhir_base: fhir_base.into(),
            app,
            other_app: None,
            backend: None,
            scopes: DEFAULT_SCOPES.to_owned(),
        }
    }

    /// The FHIR base without a trailing slash.
    pub(crate) fn base(&self) -> &str {
        self.fhir_base.trim_end_matches('/')
    }
}

/// The launch scopes used when none are given: patient context, identity, a refresh token,
/// and two resource types (so that narrowing and out-of-scope reads can be tried).
pub const DEFAULT_SCOPES: &str =
    "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs";

/// Probes `target` through `http`, with `approver` for the authorization step, and returns one
/// result per server check ([`checks::ALL`]), in that order.
///
/// Never panics on what the server sends; a server that cannot be reached gives failed
/// discovery checks and skipped others.
pub async fn probe(
    target: &ProbeTarget,
    http: &dyn HttpClient,
    approver: &dyn Approver,
) -> Vec<CheckResult> {
    let mut runner = runner::Runner::new(target, http, approver);
    runner.run().await;
    runner.finish()
}
