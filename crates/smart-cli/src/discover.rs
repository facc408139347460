//! `smart discover`: what a server advertises, and where that came from.
//!
//! Everything printed here comes from the server, so every value goes through
//! [`clean`] (text) or [`json_text`] (JSON):
//! a configuration cannot drive the terminal with escape sequences.

use crate::CliResult;
use crate::terminal::{clean, json_text, outln};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The FHIR base URL (https, or http on loopback).
    fhir_base: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> CliResult {
    let client = crate::net::client_builder()?.build()?;
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
        outln!("{}", json_text(&out)?)?;
        return Ok(());
    }
    let mut text = String::new();
    let mut row = |k: &str, v: &str| text.push_str(&format!("  {k:<26}{}\n", clean(v)));
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(", ")
        }
    };
    row("source", &found.source.to_string());
    row(
        "adapter",
        &format!("{} ({})", choice.adapter, choice.reason),
    );
    row(
        "authorization_endpoint",
        c.authorization_endpoint.as_deref().unwrap_or("-"),
    );
    row("token_endpoint", &c.token_endpoint);
    for (name, value) in [
        ("introspection_endpoint", &c.introspection_endpoint),
        ("revocation_endpoint", &c.revocation_endpoint),
        ("management_endpoint", &c.management_endpoint),
        ("registration_endpoint", &c.registration_endpoint),
        ("issuer", &c.issuer),
        ("jwks_uri", &c.jwks_uri),
    ] {
        if let Some(v) = value {
            row(name, v);
        }
    }
    row("grant_types_supported", &list(&c.grant_types_supported));
    row(
        "code_challenge_methods",
        &list(&c.code_challenge_methods_supported),
    );
    if let Some(m) = &c.token_endpoint_auth_methods_supported {
        row("token_endpoint_auth", &list(m));
    }
    let caps: Vec<String> = c.capabilities.iter().map(ToString::to_string).collect();
    row("capabilities", &list(&caps));
    if let Some(s) = &c.scopes_supported {
        row("scopes_supported", &list(s));
    }
    if !c.extra.is_empty() {
        row(
            "other fields",
            &c.extra.keys().cloned().collect::<Vec<_>>().join(", "),
        );
    }
    outln!("SMART configuration of {}", clean(&found.fhir_base))?;
    crate::terminal::print(&text)?;
    Ok(())
}
