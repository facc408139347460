//! The sandbox flows of the adapter × profile matrix, over real HTTP on 127.0.0.1.
//!
//! Each [`FlowStep`] runs against a fresh sandbox, so steps cannot influence each other (the
//! refresh throttle of one profile, for instance). [`run`] runs every step and returns the
//! outcomes in protocol order; an `Err` outcome carries the error text, which the matrix prints.

use std::sync::Arc;

use futures_util::TryStreamExt;
use smart_core::descriptor::{AdapterDescriptor, FlowStep, SandboxProfile};
use smart_core::headless::authorize_headless;
use smart_core::quirks::VendorQuirks;
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::{ClientRegistration, RefreshOptions, SmartClient, StandaloneLaunch};
use smart_fhir::{FhirClient, Search};
use smart_sandbox::{
    ClientAuth, DEMO_REDIRECT_URI, LaunchContextRequest, LaunchDefaults, Sandbox, SandboxConfig,
    VendorProfile,
};

/// The sandbox profile a descriptor names, parsed.
pub fn vendor_profile(profile: &SandboxProfile) -> Result<VendorProfile, String> {
    match profile {
        SandboxProfile::Builtin(name) => VendorProfile::builtin(name),
        SandboxProfile::Toml(text) => VendorProfile::from_toml_str(text),
        other => return Err(format!("unsupported sandbox profile {other:?}")),
    }
    .map_err(|e| e.to_string())
}

/// Runs every step with `adapter` against `profile`, in protocol order.
pub async fn run(
    profile: &SandboxProfile,
    adapter: &Arc<dyn VendorQuirks>,
) -> Vec<(FlowStep, Outcome)> {
    let mut outcomes = Vec::new();
    for step in FlowStep::ALL {
        outcomes.push((step, run_step(step, profile, adapter).await));
    }
    outcomes
}

/// The steps that failed, in protocol order.
pub fn failed(outcomes: &[(FlowStep, Outcome)]) -> Vec<FlowStep> {
    outcomes
        .iter()
        .filter(|(_, o)| o.is_err())
        .map(|(s, _)| *s)
        .collect()
}

/// Runs every step with the descriptor's adapter against its own sandbox profile and panics,
/// listing the failures, unless all pass. One line in an adapter crate's tests.
pub async fn assert_passes_own_profile(descriptor: &AdapterDescriptor) {
    let adapter = (descriptor.adapter)();
    let outcomes = run(&descriptor.sandbox_profile, &adapter).await;
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(s, o)| o.as_ref().err().map(|e| format!("{s:?}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "the {} adapter fails on its own profile:\n{}",
        descriptor.name,
        failures.join("\n")
    );
}

/// The test client's id.
pub const CLIENT_ID: &str = "matrix-app";
/// The test client's secret (with characters that need form-urlencoding).
pub const SECRET: &str = "s3cret/with+reserved=chars";

/// Resource types for the long standalone scope list (it makes the authorize URL longer than
/// 2 KB, where the spec adapter switches to POST when the server advertises it).
const TYPES: &[&str] = &[
    "AllergyIntolerance",
    "Appointment",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "Location",
    "Medication",
    "MedicationAdministration",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "Procedure",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
    "Specimen",
    "Substance",
    "Task",
    "Communication",
    "Consent",
    "Flag",
    "FamilyMemberHistory",
    "ImagingStudy",
    "List",
    "NutritionOrder",
    "PractitionerRole",
    "Questionnaire",
    "RiskAssessment",
    "Schedule",
    "Slot",
];

/// The result of one step: `Err` carries the error text the step failed with.
pub type Outcome = Result<(), String>;

/// Starts a sandbox emulating `profile`, with the test client registered (a confidential
/// symmetric client whose secret needs form-urlencoding, allowed wildcard scopes).
///
/// # Panics
///
/// When the profile does not parse or the sandbox cannot start: a broken test setup.
pub async fn start(profile: &SandboxProfile) -> Sandbox {
    let config = SandboxConfig {
        profile: vendor_profile(profile).expect("sandbox profile"),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await.expect("sandbox");
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: CLIENT_ID.into(),
        auth: ClientAuth::ClientSecretBasic {
            secret: SECRET.into(),
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes:
            "launch launch/patient openid fhirUser profile offline_access patient/*.rs user/*.rs"
                .into(),
        context: LaunchDefaults {
            patient: Some("pat-1".into()),
            user: Some("Practitioner/prac-1".into()),
            ..LaunchDefaults::default()
        },
        grant_types: vec!["authorization_code".into()],
    });
    sandbox
}

/// A client for the test registration, with `adapter` installed and named by the registration.
pub fn client(base: &str, adapter: Arc<dyn VendorQuirks>, scopes: &str) -> SmartClient {
    let name = adapter.name().to_owned();
    SmartClient::builder()
        .registration(
            "app",
            ClientRegistration::confidential_symmetric(
                base,
                CLIENT_ID,
                ClientSecret::new(SECRET),
                DEMO_REDIRECT_URI,
            )
            .with_scopes(Scopes::parse(scopes))
            .with_adapter(name),
        )
        .adapter(adapter)
        .build()
        .expect("client")
}

/// The long standalone scope list (an authorize URL over 2 KB).
pub fn long_scopes() -> String {
    let mut scopes = vec![
        "launch/patient".to_owned(),
        "offline_access".to_owned(),
        "patient/*.rs".to_owned(),
    ];
    for context in ["patient", "user"] {
        for t in TYPES {
            scopes.push(format!("{context}/{t}.rs"));
        }
    }
    scopes.join(" ")
}

/// A headless standalone launch.
pub async fn standalone(
    client: &SmartClient,
    base: &str,
) -> Result<smart_core::CompletedLaunch, String> {
    let request = client
        .begin_standalone_launch(base, StandaloneLaunch::default())
        .await
        .map_err(|e| e.to_string())?;
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
        .await
        .map_err(|e| e.to_string())?;
    client
        .complete_launch(&callback)
        .await
        .map_err(|e| e.to_string())
}

/// A headless EHR launch for patient `pat-2`, issued by the sandbox.
pub async fn ehr(
    client: &SmartClient,
    sandbox: &Sandbox,
) -> Result<smart_core::CompletedLaunch, String> {
    let launch = sandbox
        .issue_launch(
            CLIENT_ID,
            LaunchContextRequest {
                patient: Some("pat-2".into()),
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
    let request = client
        .begin_ehr_launch(&sandbox.fhir_base(), &launch)
        .await
        .map_err(|e| e.to_string())?;
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
        .await
        .map_err(|e| e.to_string())?;
    client
        .complete_launch(&callback)
        .await
        .map_err(|e| e.to_string())
}

/// Runs one step with `adapter` against a fresh sandbox emulating `profile`.
pub async fn run_step(
    step: FlowStep,
    profile: &SandboxProfile,
    adapter: &Arc<dyn VendorQuirks>,
) -> Outcome {
    let sandbox = start(profile).await;
    let base = sandbox.fhir_base();
    match step {
        FlowStep::StandaloneLaunch => {
            let c = client(&base, adapter.clone(), &long_scopes());
            let done = standalone(&c, &base).await?;
            done.session
                .context
                .patient
                .as_deref()
                .map(|_| ())
                .ok_or("no patient in context".into())
        }
        FlowStep::Identity => {
            let c = client(
                &base,
                adapter.clone(),
                "launch/patient openid fhirUser patient/Patient.rs",
            );
            let done = standalone(&c, &base).await?;
            let identity = done.session.identity.ok_or("no verified identity")?;
            identity
                .fhir_user
                .map(|_| ())
                .ok_or("identity without fhirUser".into())
        }
        FlowStep::EhrLaunch => {
            let c = client(
                &base,
                adapter.clone(),
                "launch patient/Patient.rs patient/Observation.rs offline_access",
            );
            let done = ehr(&c, &sandbox).await?;
            match done.session.context.patient.as_deref() {
                Some("pat-2") => Ok(()),
                other => Err(format!("patient in context is {other:?}, expected pat-2")),
            }
        }
        FlowStep::FhirReadAndSearch => {
            let c = client(
                &base,
                adapter.clone(),
                "launch patient/Patient.rs patient/Observation.rs offline_access",
            );
            let done = ehr(&c, &sandbox).await?;
            let bearer = c
                .session_bearer(&done.session_id)
                .await
                .map_err(|e| e.to_string())?;
            let fhir = FhirClient::new(c.http().clone(), Arc::new(bearer));
            fhir.read_json("Patient", "pat-2")
                .await
                .map_err(|e| e.to_string())?;
            let found: Vec<serde_json::Value> = fhir
                .resources(
                    &Search::new("Observation")
                        .patient("pat-2")
                        .count(50)
                        .page_limit(2),
                )
                .try_collect()
                .await
                .map_err(|e| e.to_string())?;
            if found.is_empty() || found.iter().any(|r| r["resourceType"] != "Observation") {
                return Err("the search returned no Observations, or other resources".into());
            }
            Ok(())
        }
        FlowStep::Refresh => {
            let c = client(
                &base,
                adapter.clone(),
                "launch patient/Patient.rs offline_access",
            );
            let done = ehr(&c, &sandbox).await?;
            for _ in 0..2 {
                c.refresh(&done.session_id, RefreshOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        other => Err(format!("step {other:?} is not implemented by the test kit")),
    }
}
