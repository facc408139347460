//! `smart introspect`: ask the authorization server what a token is (RFC 7662).
//!
//! Servers have been seen echoing the introspected `token` (or other credentials) back in the
//! response; whatever lands in the launch context's extras is redacted before printing, and every
//! server-supplied string has its control characters escaped.

use serde_json::json;
use smart_core::secret::AccessToken;
use smart_core::{ClientRegistration, IntrospectionAuth};

use crate::CliResult;
use crate::credentials::Credentials;
use crate::terminal::{clean_or_dash, json_text, outln, redact_secrets};

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
    /// Authenticate as a client: --client-id with --client-secret or --key.
    #[command(flatten)]
    credentials: Credentials,
    /// Authenticate with this bearer token instead of client credentials.
    #[arg(long, allow_hyphen_values = true)]
    bearer: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> CliResult {
    let (registration, auth) = match (&args.credentials.client_id, &args.bearer) {
        (Some(client_id), None) => {
            let registration = match (args.credentials.secret()?, &args.credentials.key) {
                (Some(secret), None) => ClientRegistration::confidential_symmetric(
                    &args.iss,
                    client_id,
                    secret,
                    "http://127.0.0.1/unused",
                ),
                (None, Some(_)) => ClientRegistration::backend(
                    &args.iss,
                    client_id,
                    args.credentials
                        .keys("introspection as an asymmetric client")?,
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
    let client = crate::net::client_builder()?
        .registration("cli", registration)
        .build()?;
    let result = client
        .introspect(&args.iss, &AccessToken::new(args.token.as_str()), auth)
        .await?;
    if args.json {
        let mut out = json!({
            "active": result.active,
            "scope": result.scope.as_ref().map(ToString::to_string),
            "client_id": result.client_id,
            "exp": result.exp,
            "sub": result.sub,
            "iss": result.iss,
            "fhirUser": result.fhir_user.as_ref().map(|u| u.url.clone()),
            "context": result.context,
        });
        redact_secrets(&mut out);
        outln!("{}", json_text(&out)?)?;
        return Ok(());
    }
    if !result.active {
        outln!("inactive (unknown, expired or revoked)")?;
        return Ok(());
    }
    let mut text = String::from("active\n");
    let mut row = |k: &str, v: Option<&str>| {
        text.push_str(&format!("  {k:<12}{}\n", clean_or_dash(v)));
    };
    row("client_id", result.client_id.as_deref());
    row(
        "scope",
        result.scope.as_ref().map(ToString::to_string).as_deref(),
    );
    row("exp", result.exp.map(|e| e.to_string()).as_deref());
    row("patient", result.context.patient.as_deref());
    row("sub", result.sub.as_deref());
    row(
        "fhirUser",
        result.fhir_user.as_ref().map(|u| u.url.as_str()),
    );
    crate::terminal::print(&text)?;
    Ok(())
}
