//! `smart demo`: the whole SMART App Launch story against the embedded sandbox, narrated.

use std::sync::Arc;

use futures_util::TryStreamExt;
use smart_core::headless::authorize_headless;
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::{ClientRegistration, RefreshOptions, SmartClient, StandaloneLaunch};
use smart_sandbox::{DEMO_REDIRECT_URI, DEMO_SECRET, LaunchContextRequest, Sandbox, SandboxConfig};

use smart_fhir::{FhirClient, Search};

use crate::terminal::outln;
use crate::{CliResult, fhir, output};

/// A FHIR client for a launched session: tokens refresh by themselves.
async fn fhir_client(
    client: &SmartClient,
    session: &smart_core::SessionId,
) -> Result<FhirClient, Box<dyn std::error::Error + Send + Sync>> {
    let bearer = client.session_bearer(session).await?;
    Ok(FhirClient::new(client.http().clone(), Arc::new(bearer)))
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the tokens themselves instead of hiding them.
    #[arg(long)]
    show_tokens: bool,
    /// Emulate a vendor's servers. The client detects the vendor and picks the matching adapter.
    #[arg(long, default_value = "generic", value_parser = crate::registry::profile_values())]
    profile: String,
}

fn step(n: u32, text: &str) -> std::io::Result<()> {
    outln!("\n[{n}] {text}")
}

pub(crate) async fn run(args: Args) -> CliResult {
    step(1, "Starting the embedded sandbox EHR on 127.0.0.1")?;
    let config = SandboxConfig {
        profile: crate::registry::profile(&args.profile)?,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await?;
    let base = sandbox.fhir_base();
    outln!("    FHIR base: {base}")?;

    // One app, registered twice with the same EHR: as a public client and as a confidential one.
    let client = crate::net::client_builder()?
        .registration(
            "public",
            ClientRegistration::public(&base, "demo-public", DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse("launch/patient patient/*.rs offline_access"))
                .with_adapter(smart_core::AUTO_ADAPTER),
        )
        .registration(
            "confidential",
            ClientRegistration::confidential_symmetric(
                &base,
                "demo-confidential",
                ClientSecret::new(DEMO_SECRET),
                DEMO_REDIRECT_URI,
            )
            .with_scopes(Scopes::parse(
                "launch patient/*.rs user/Practitioner.rs offline_access",
            ))
            .with_adapter(smart_core::AUTO_ADAPTER),
        )
        .build()?;

    step(2, "Discovering the server's SMART configuration")?;
    let found = client.discover(&base).await?;
    outln!("    source: {}", found.source)?;
    outln!(
        "    authorize: {}",
        found
            .configuration
            .authorization_endpoint
            .as_deref()
            .unwrap_or("-")
    )?;
    outln!("    token:     {}", found.configuration.token_endpoint)?;
    outln!(
        "    {} capabilities advertised",
        found.configuration.capabilities.len()
    )?;
    let choice = client.detect_adapter(&base).await;
    outln!("    adapter: {} ({})", choice.adapter, choice.reason)?;

    step(
        3,
        "Standalone launch as public client `demo-public` (PKCE S256, patient picker auto-approved)",
    )?;
    let request = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                registration: Some("public".into()),
                ..StandaloneLaunch::default()
            },
        )
        .await?;
    outln!(
        "    authorization request by {:?}; state is single-use",
        request.method
    )?;
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI).await?;
    let standalone = client.complete_launch(&callback).await?;
    output::print_launch(&standalone, "standalone (in memory)", args.show_tokens)?;

    step(4, "Reading the patient in context with the access token")?;
    let patient_id = standalone
        .session
        .context
        .patient
        .clone()
        .ok_or("the sandbox gave no patient")?;
    let standalone_fhir = fhir_client(&client, &standalone.session_id).await?;
    let patient = standalone_fhir
        .read_json("Patient", &patient_id)
        .await?
        .resource;
    outln!("    Patient/{patient_id}: {}", fhir::patient_name(&patient))?;

    step(
        5,
        "EHR launch as confidential client `demo-confidential` from pat-2's chart",
    )?;
    let launch = sandbox.issue_launch(
        "demo-confidential",
        LaunchContextRequest {
            patient: Some("pat-2".into()),
            ..LaunchContextRequest::default()
        },
    )?;
    outln!("    the EHR opens the app's launch URL with iss={base} and an opaque launch handle")?;
    let request = client.begin_ehr_launch(&base, &launch).await?;
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI).await?;
    let ehr = client.complete_launch(&callback).await?;
    output::print_launch(&ehr, "ehr (in memory)", args.show_tokens)?;
    let ehr_patient = ehr
        .session
        .context
        .patient
        .clone()
        .ok_or("the sandbox gave no patient")?;
    let ehr_fhir = fhir_client(&client, &ehr.session_id).await?;
    let patient = ehr_fhir.read_json("Patient", &ehr_patient).await?.resource;
    outln!(
        "    Patient/{ehr_patient}: {}",
        fhir::patient_name(&patient)
    )?;
    outln!("    recent vital signs:")?;
    let recent = Search::new("Observation")
        .patient(&ehr_patient)
        .param("category", "vital-signs")
        .sort("-date")
        .count(5)
        .page_limit(1);
    let observations: Vec<serde_json::Value> = ehr_fhir.resources(&recent).try_collect().await?;
    for observation in &observations {
        outln!("      {}", fhir::observation_line(observation))?;
    }

    step(6, "Refreshing the EHR session's tokens")?;
    let before = ehr.session.tokens.clone();
    let refreshed = client
        .refresh(&ehr.session_id, RefreshOptions::default())
        .await?;
    let after = &refreshed.value.tokens;
    outln!(
        "    new access token issued: {}",
        after.access_token != before.access_token
    )?;
    outln!(
        "    refresh token rotated:   {}",
        after.refresh_token != before.refresh_token
    )?;
    for warning in &refreshed.value.refresh_warnings {
        outln!("    warning: {warning}")?;
    }
    outln!(
        "    granted after refresh:   {}",
        after
            .granted_scopes
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    )?;
    if let Some(at) = after.expires_at {
        outln!(
            "    expires in {} s",
            at.saturating_sub(smart_core::token::now_unix())
        )?;
    }
    let patient = ehr_fhir.read_json("Patient", &ehr_patient).await?.resource;
    outln!(
        "    the refreshed token reads Patient/{ehr_patient}: {}",
        fhir::patient_name(&patient)
    )?;

    sandbox.shutdown().await;
    outln!(
        "\nDone: both launches, FHIR reads, a search and a refresh completed against the sandbox."
    )?;
    Ok(())
}
