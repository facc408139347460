//! `smart introspect`: ask the authorization server what a token is (RFC 7662).

use std::path::PathBuf;

use serde_json::json;
use smart_core::secret::{AccessToken, ClientSecret};
use smart_core::{ClientRegistration, IntrospectionAuth, SmartClient};

use crate::CliResult;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The FHIR base URL.
    #[arg(long)]
    iss: String,
    /// The token to introspect. Prefer the SMART_TOKEN variable (keeps it out of shell history).
    #[arg(
        long,
        env = "SMART_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    token: String,
    /// Authenticate as this client (with --client-secret or --key).
    #[arg(long)]
    client_id: Option<String>,
    /// The client secret (symmetric clients). Prefer SMART_CLIENT_SECRET.
    #[arg(
        long,
        env = "SMART_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    client_secret: Option<String>,
    /// The private key (asymmetric clients), PEM or JWK.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Authenticate with this bearer token instead of client credentials.
    #[arg(long, allow_hyphen_values = true)]
    bearer: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> CliResult {
    let (registration, auth) = match (&args.client_id, &args.bearer) {
        (Some(client_id), None) => {
            let registration = match (&args.client_secret, &args.key) {
                (Some(secret), None) => ClientRegistration::confidential_symmetric(
                    &args.iss,
                    client_id,
                    ClientSecret::new(secret.as_str()),
                    "http://127.0.0.1/unused",
                ),
                (None, Some(key)) => ClientRegistration::backend(
                    &args.iss,
                    client_id,
                    crate::load_keys(key, None)?,
                    Default::default(),
                ),
                _ => {
                    return Err(
                        "with --client-id pass exactly one of --client-secret or --key".into(),
                    );
                }
            };
            (registration, IntrospectionAuth::Client)
        }
        (None, Some(bearer)) => (
            ClientRegistration::public(&args.iss, "introspection", "http://127.0.0.1/unused"),
            IntrospectionAuth::Bearer(AccessToken::new(bearer.as_str())),
        ),
        _ => {
            return Err(
                "authenticate with --client-id (and --client-secret or --key) or with --bearer"
                    .into(),
            );
        }
    };
    let client = smart_adapters::install(SmartClient::builder())
        .registration("cli", registration)
        .build()?;
    let result = client
        .introspect(&args.iss, &AccessToken::new(args.token.as_str()), auth)
        .await?;
    if args.json {
        let out = json!({
            "active": result.active,
            "scope": result.scope.as_ref().map(ToString::to_string),
            "client_id": result.client_id,
            "exp": result.exp,
            "sub": result.sub,
            "iss": result.iss,
            "fhirUser": result.fhir_user.as_ref().map(|u| u.url.clone()),
            "context": result.context,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if !result.active {
        println!("inactive (unknown, expired or revoked)");
        return Ok(());
    }
    let row = |k: &str, v: Option<String>| println!("  {k:<12}{}", v.unwrap_or_else(|| "-".into()));
    println!("active");
    row("client_id", result.client_id.clone());
    row("scope", result.scope.as_ref().map(ToString::to_string));
    row("exp", result.exp.map(|e| e.to_string()));
    row("patient", result.context.patient.clone());
    row("sub", result.sub.clone());
    row("fhirUser", result.fhir_user.as_ref().map(|u| u.url.clone()));
    Ok(())
}
