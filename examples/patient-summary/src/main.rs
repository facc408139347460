//! Patient summary: an EHR launch, then demographics, active conditions and the latest vital
//! signs of the patient in context, read as typed FHIR R4 resources.
//!
//! Run it with `cargo run -p patient-summary [pat-N]` (default pat-1). It starts the embedded
//! sandbox, so it needs nothing else; point the registration at a real EHR to use it for real.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::TryStreamExt;
use smart::ClientRegistration;
use smart::fhir::r4::resources::{
    Condition, Observation, ObservationEffective, ObservationValue, Patient,
};
use smart::fhir::r4::types::{CodeableConcept, Quantity};
use smart::fhir::{FhirClient, Search};
use smart::headless::authorize_headless;
use smart::sandbox::{
    DEMO_REDIRECT_URI, DEMO_SECRET, LaunchContextRequest, Sandbox, SandboxConfig,
};
use smart::scope::Scopes;
use smart::secret::ClientSecret;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let patient_id = std::env::args().nth(1).unwrap_or_else(|| "pat-1".into());
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let base = sandbox.fhir_base();

    // The app: a confidential client registered with this EHR.
    let client = smart::builder()
        .registration(
            "ehr",
            ClientRegistration::confidential_symmetric(&base, "demo-confidential", ClientSecret::new(DEMO_SECRET), DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse("launch patient/Patient.rs patient/Condition.rs patient/Observation.rs offline_access")),
        )
        .build()?;

    // A clinician opens the app from the patient's chart (the sandbox plays the EHR).
    let launch = sandbox.issue_launch(
        "demo-confidential",
        LaunchContextRequest {
            patient: Some(patient_id.clone()),
            ..LaunchContextRequest::default()
        },
    )?;
    let request = client.begin_ehr_launch(&base, &launch).await?;
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI).await?;
    let launched = client.complete_launch(&callback).await?;
    let patient_id = launched
        .session
        .context
        .patient
        .clone()
        .ok_or("no patient in context")?;

    // A FHIR client on the session: tokens refresh by themselves, requests retry on 429/503.
    let fhir = FhirClient::new(
        client.http().clone(),
        Arc::new(client.session_bearer(&launched.session_id).await?),
    );

    let patient = fhir.read::<Patient>(&patient_id).await?.resource;
    println!("{}", name(&patient));
    println!(
        "  {} · born {}",
        patient
            .gender
            .as_ref()
            .and_then(|g| g.value.clone())
            .unwrap_or_else(|| "unknown".into()),
        patient
            .birth_date
            .as_ref()
            .and_then(|d| d.value.clone())
            .unwrap_or_else(|| "unknown".into()),
    );

    println!("\nActive conditions");
    let conditions: Vec<smart::fhir::Typed<Condition>> = fhir
        .search::<Condition>(
            &Search::new("Condition")
                .patient(&patient_id)
                .param("clinical-status", "active"),
        )
        .try_collect()
        .await?;
    if conditions.is_empty() {
        println!("  none recorded");
    }
    for condition in &conditions {
        println!(
            "  - {}",
            condition
                .code
                .as_deref()
                .map(concept)
                .unwrap_or_else(|| "(uncoded)".into())
        );
    }

    println!("\nLatest vital signs");
    let vitals = Search::new("Observation")
        .patient(&patient_id)
        .param("category", "vital-signs")
        .sort("-date")
        .count(100)
        .page_limit(3);
    let mut latest: BTreeMap<String, (String, String)> = BTreeMap::new();
    let observations: Vec<smart::fhir::Typed<Observation>> =
        fhir.search::<Observation>(&vitals).try_collect().await?;
    for observation in &observations {
        // Sorted newest first: the first one seen for each code is the latest.
        latest
            .entry(concept(&observation.code))
            .or_insert_with(|| (date(observation), value(observation)));
    }
    for (label, (when, value)) in &latest {
        println!("  {label:<32} {value:<24} {when}");
    }

    sandbox.shutdown().await;
    Ok(())
}

fn name(patient: &Patient) -> String {
    let Some(name) = patient.name.first() else {
        return "(no name)".into();
    };
    let given: Vec<String> = name.given.iter().filter_map(|g| g.value.clone()).collect();
    let family = name
        .family
        .as_ref()
        .and_then(|f| f.value.clone())
        .unwrap_or_default();
    format!("{} {family}", given.join(" ")).trim().to_owned()
}

fn concept(concept: &CodeableConcept) -> String {
    concept
        .text
        .as_ref()
        .and_then(|t| t.value.clone())
        .or_else(|| {
            concept
                .coding
                .first()
                .and_then(|c| c.display.as_ref())
                .and_then(|d| d.value.clone())
        })
        .unwrap_or_else(|| "(uncoded)".into())
}

fn quantity(q: &Quantity) -> String {
    let value = q
        .value
        .as_ref()
        .and_then(|v| v.value.clone())
        .unwrap_or_default();
    let unit = q
        .unit
        .as_ref()
        .and_then(|u| u.value.clone())
        .unwrap_or_default();
    format!("{value} {unit}").trim().to_owned()
}

fn value(observation: &Observation) -> String {
    if let Some(ObservationValue::Quantity(q)) = &observation.value {
        return quantity(q);
    }
    // Panels (blood pressure) carry their values in components.
    let parts: Vec<String> = observation
        .component
        .iter()
        .filter_map(|c| match &c.value {
            Some(smart::fhir::r4::resources::ObservationComponentValue::Quantity(q)) => {
                Some(quantity(q))
            }
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" / ")
    }
}

fn date(observation: &Observation) -> String {
    match &observation.effective {
        Some(ObservationEffective::DateTime(d)) => d
            .value
            .clone()
            .unwrap_or_default()
            .chars()
            .take(10)
            .collect(),
        _ => String::new(),
    }
}
