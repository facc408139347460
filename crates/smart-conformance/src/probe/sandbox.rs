//! The probe against the embedded sandbox, in each vendor profile.
//!
//! This is how the probe proves itself: against the strict sandbox it must report no SHALL
//! failure in any profile, and with one defect switch on it must report exactly that defect
//! (the tests in `tests/probe_defects.rs`). `cargo xtask conformance` runs the same thing.

use std::time::Duration;

use smart_core::descriptor::SandboxProfile;
use smart_core::http::ReqwestHttpClient;
use smart_jose::{Algorithm, Jwks, PrivateKey};
use smart_sandbox::{
    Behavior, ClientAuth, ClientRegistration, LaunchDefaults, Sandbox, SandboxConfig, VendorProfile,
};

use super::checks::S_1_1;
use super::runner::random_string;
use super::{AppClient, BackendClient, Credential, ProbeTarget, RedirectApprover, probe};
use crate::model::{CheckResult, Status};

/// The launch scopes the probe's sandbox apps are registered for and request.
pub const SANDBOX_SCOPES: &str =
    "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs";

/// The backend client's scopes.
const BACKEND_SCOPES: &str = "system/Patient.rs system/Observation.rs";

/// Patients in the probe's sandboxes: the fewest the sandbox allows plus a few, for a fast start.
const PATIENTS: usize = 20;

/// The probe's timeout for one request to a sandbox.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The vendor profiles of the installed adapters (the generic one first), by adapter name.
///
/// ```
/// let profiles = smart_conformance::probe::sandbox_profiles();
/// assert!(profiles.iter().any(|(name, _)| name == "generic"));
/// ```
pub fn sandbox_profiles() -> Vec<(String, VendorProfile)> {
    let mut out = Vec::new();
    for d in smart_adapters::descriptors() {
        let profile = match d.sandbox_profile {
            SandboxProfile::Builtin(name) => VendorProfile::builtin(name),
            SandboxProfile::Toml(text) => VendorProfile::from_toml_str(text),
            _ => continue,
        };
        if let Ok(p) = profile {
            out.push((d.name.to_owned(), p));
        }
    }
    out.sort_by_key(|(name, _)| name != "generic");
    out
}

/// Starts a sandbox in `profile` with `behavior`, registers the probe's three clients (a
/// confidential app, a public app and a backend client) and returns it with the matching
/// target.
///
/// # Errors
/// The sandbox's message when it cannot start or a key cannot be made.
pub async fn start_probe_sandbox(
    profile: VendorProfile,
    behavior: Behavior,
) -> Result<(Sandbox, ProbeTarget), String> {
    let key = PrivateKey::generate(Algorithm::ES384).map_err(|e| e.to_string())?;
    let secret = random_string(24);
    let context = LaunchDefaults {
        patient: Some("pat-1".to_owned()),
        encounter: None,
        user: Some("Practitioner/prac-1".to_owned()),
        approve: true,
        need_patient_banner: true,
        smart_style_url: None,
    };
    let app = |id: &str, auth: ClientAuth, redirect: &str| ClientRegistration {
        client_id: id.to_owned(),
        auth,
        redirect_uris: vec![redirect.to_owned()],
        launch_uri: None,
        scopes: SANDBOX_SCOPES.to_owned(),
        grant_types: vec!["authorization_code".to_owned()],
        context: context.clone(),
    };
    let confidential_uri = "http://127.0.0.1:9/probe/callback";
    let public_uri = "http://127.0.0.1:9/probe/other-callback";
    let clients = vec![
        app(
            "probe-confidential",
            ClientAuth::ClientSecretBasic {
                secret: secret.clone(),
            },
            confidential_uri,
        ),
        app("probe-public", ClientAuth::Public, public_uri),
        ClientRegistration {
            client_id: "probe-backend".to_owned(),
            auth: ClientAuth::PrivateKeyJwt {
                jwks: Some(Jwks::new(vec![key.public_jwk()])),
                jwks_url: None,
            },
            redirect_uris: Vec::new(),
            launch_uri: None,
            scopes: BACKEND_SCOPES.to_owned(),
            grant_types: vec!["client_credentials".to_owned()],
            context: context.clone(),
        },
    ];
    let config = SandboxConfig {
        clients,
        behavior,
        profile,
        patient_count: PATIENTS,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await.map_err(|e| e.to_string())?;
    let target = ProbeTarget {
        fhir_base: sandbox.fhir_base(),
        app: AppClient::confidential(
            "probe-confidential",
            confidential_uri,
            Credential::Secret(secret),
        ),
        other_app: Some(AppClient::public("probe-public", public_uri)),
        backend: Some(BackendClient {
            client_id: "probe-backend".to_owned(),
            key,
            scopes: BACKEND_SCOPES.to_owned(),
        }),
        scopes: SANDBOX_SCOPES.to_owned(),
    };
    Ok((sandbox, target))
}

/// Probes a sandbox in `profile` with `behavior`; results carry the subject `sandbox/<name>`.
///
/// # Errors
/// When the sandbox or the HTTP client cannot start.
pub async fn probe_sandbox(
    name: &str,
    profile: VendorProfile,
    behavior: Behavior,
) -> Result<Vec<CheckResult>, String> {
    let (sandbox, target) = start_probe_sandbox(profile, behavior).await?;
    let http = ReqwestHttpClient::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let mut results = probe(&target, &http, &RedirectApprover).await;
    sandbox.shutdown().await;
    let subject = format!("sandbox/{name}");
    for r in &mut results {
        r.subject.clone_from(&subject);
    }
    Ok(results)
}

/// Starts the strict sandbox in each vendor profile ([`sandbox_profiles`]) on 127.0.0.1, probes
/// them concurrently, and returns every result (subjects `sandbox/<profile>`).
pub async fn probe_sandbox_profiles() -> Vec<CheckResult> {
    let mut runs = Vec::new();
    for (name, profile) in sandbox_profiles() {
        runs.push((
            name.clone(),
            tokio::spawn(async move { probe_sandbox(&name, profile, Behavior::default()).await }),
        ));
    }
    let mut out = Vec::new();
    for (name, run) in runs {
        match run.await {
            Ok(Ok(results)) => out.extend(results),
            Ok(Err(e)) => out.push(CheckResult::new(
                &S_1_1,
                format!("sandbox/{name}"),
                Status::Fail(format!("the sandbox could not be probed: {e}")),
            )),
            Err(e) => out.push(CheckResult::new(
                &S_1_1,
                format!("sandbox/{name}"),
                Status::Fail(format!("the probe stopped: {e}")),
            )),
        }
    }
    out
}
