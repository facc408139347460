//! `smart discover`: what a server advertises, and where that came from.

use smart_core::SmartClient;

use crate::CliResult;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The FHIR base URL (https, or http on loopback).
    fhir_base: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> CliResult {
    let client = smart_adapters::install(SmartClient::builder()).build()?;
    let found = client.discover(&args.fhir_base).await?;
    let choice = client.detect_adapter(&args.fhir_base).await;
    let c = &found.configuration;
    if args.json {
        let out = serde_json::json!({
            "fhir_base": found.fhir_base,
            "source": found.source,
            "adapter": {"name": choice.adapter, "reason": choice.reason},
            "configuration": c,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let row = |k: &str, v: String| println!("  {k:<26}{v}");
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(", ")
        }
    };
    println!("SMART configuration of {}", found.fhir_base);
    row("source", found.source.to_string());
    row("adapter", format!("{} ({})", choice.adapter, choice.reason));
    row(
        "authorization_endpoint",
        c.authorization_endpoint
            .clone()
            .unwrap_or_else(|| "-".into()),
    );
    row("token_endpoint", c.token_endpoint.clone());
    for (name, value) in [
        ("introspection_endpoint", &c.introspection_endpoint),
        ("revocation_endpoint", &c.revocation_endpoint),
        ("management_endpoint", &c.management_endpoint),
        ("registration_endpoint", &c.registration_endpoint),
        ("issuer", &c.issuer),
        ("jwks_uri", &c.jwks_uri),
    ] {
        if let Some(v) = value {
            row(name, v.clone());
        }
    }
    row("grant_types_supported", list(&c.grant_types_supported));
    row(
        "code_challenge_methods",
        list(&c.code_challenge_methods_supported),
    );
    if let Some(m) = &c.token_endpoint_auth_methods_supported {
        row("token_endpoint_auth", list(m));
    }
    let caps: Vec<String> = c.capabilities.iter().map(ToString::to_string).collect();
    row("capabilities", list(&caps));
    if let Some(s) = &c.scopes_supported {
        row("scopes_supported", list(s));
    }
    if !c.extra.is_empty() {
        row(
            "other fields",
            c.extra.keys().cloned().collect::<Vec<_>>().join(", "),
        );
    }
    Ok(())
}
