//! `smart register`: dynamic client registration (RFC 7591), as Epic uses it for patient-facing
//! public apps.
//!
//! Why a command: the flow has three steps that are easy to get wrong by hand (a one-time
//! initial access token from a standalone launch, a registration body naming the app and the
//! device key, then a `jwt-bearer` grant signed by that key), and an integrator wants to see each
//! answer. The command registers the public half of `--key`, prints the new client, and with
//! `--token` also requests an access token with the `jwt-bearer` grant, so the whole chain can be
//! checked against a server (or `smart sandbox --profile epic`) in one go. Tokens are printed only
//! with `--show-token`; every server-supplied string is escaped.

use std::path::PathBuf;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use smart_core::registration::{RegistrationRequest, jwt_bearer_token_with_policy, register};
use smart_core::secret::AccessToken;
use smart_core::smart_jose::Jwks;

use crate::CliResult;
use crate::terminal::{clean_or_dash, json_text, outln};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The FHIR base URL (its discovery gives the registration and token endpoints).
    #[arg(long)]
    iss: String,
    /// The app's client ID, sent as software_id (Epic: the app's Epic client ID).
    #[arg(long)]
    software_id: String,
    /// The device's private key (PEM or JWK); only its public half is sent.
    #[arg(long)]
    key: PathBuf,
    /// The initial access token (Epic: the access token of a standalone launch). Prefer the
    /// SMART_INITIAL_TOKEN variable (keeps it out of shell history).
    #[arg(
        long,
        env = "SMART_INITIAL_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    initial_token: Option<String>,
    /// The registration endpoint, when discovery does not advertise one.
    #[arg(long)]
    endpoint: Option<String>,
    /// Send this client ID as the Epic-Client-ID header on the registration and token requests.
    #[arg(long, value_name = "CLIENT_ID")]
    epic_client_id: Option<String>,
    /// After registering, request an access token with the jwt-bearer grant.
    #[arg(long)]
    token: bool,
    /// Print the access token too (it is a credential).
    #[arg(long, requires = "token")]
    show_token: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> CliResult {
    let keys = crate::load_keys(&args.key, None)?;
    let key = keys.signing_key();
    let mut headers = HeaderMap::new();
    if let Some(id) = &args.epic_client_id {
        let value = HeaderValue::from_str(id.trim())
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or("--epic-client-id is not a client ID (empty or control characters); pass the ID Epic issued")?;
        headers.insert(HeaderName::from_static("epic-client-id"), value);
    }
    let client = crate::net::client_builder()?.build()?;
    let discovered = client.discover(&args.iss).await?;
    let configuration = &discovered.configuration;
    let endpoint = match (&args.endpoint, &configuration.registration_endpoint) {
        (Some(endpoint), _) => endpoint.clone(),
        (None, Some(endpoint)) => endpoint.clone(),
        (None, None) => {
            return Err(format!(
                "{} advertises no registration_endpoint; pass --endpoint <URL> (Epic: …/oauth2/register, listed in /metadata when Epic-Client-ID is sent)",
                crate::terminal::clean(&args.iss)
            )
            .into());
        }
    };
    let initial = args.initial_token.as_deref().map(AccessToken::new);
    let request =
        RegistrationRequest::software(&args.software_id, Jwks::new(vec![key.public_jwk()]));
    let registered = register(
        &**client.http(),
        &endpoint,
        initial.as_ref(),
        &request,
        &headers,
    )
    .await?;
    let token = if args.token {
        // The vendor's policy applies to the grant (Epic: one retry of a bare 400).
        let choice = client.detect_adapter(&args.iss).await;
        let policy = client.adapter_named(&choice.adapter)?.policy();
        Some(
            jwt_bearer_token_with_policy(
                &**client.http(),
                &configuration.token_endpoint,
                &registered.client_id,
                &key,
                &headers,
                &policy,
            )
            .await?,
        )
    } else {
        None
    };
    if args.json {
        let mut out = json!({
            "client_id": registered.client_id,
            "client_id_issued_at": registered.client_id_issued_at,
            "token_endpoint_auth_method": registered.token_endpoint_auth_method,
            "grant_types": registered.grant_types,
            "software_id": registered.software_id,
        });
        if let Some(t) = &token {
            out["token"] = json!({
                "expires_at": t.tokens.expires_at,
                "scope": t.tokens.granted_scopes.as_ref().map(ToString::to_string),
                "patient": t.context.patient,
            });
            if args.show_token {
                out["token"]["access_token"] = json!(t.tokens.access_token.expose_secret());
            }
        }
        outln!("{}", json_text(&out)?)?;
        return Ok(());
    }
    let mut text = String::from("registered\n");
    let mut row = |k: &str, v: Option<&str>| {
        text.push_str(&format!("  {k:<28}{}\n", clean_or_dash(v)));
    };
    row("client_id", Some(&registered.client_id));
    row(
        "client_id_issued_at",
        registered
            .client_id_issued_at
            .map(|t| t.to_string())
            .as_deref(),
    );
    row(
        "token_endpoint_auth_method",
        registered.token_endpoint_auth_method.as_deref(),
    );
    row("grant_types", Some(&registered.grant_types.join(" ")));
    row("software_id", registered.software_id.as_deref());
    if let Some(t) = &token {
        text.push_str("jwt-bearer token\n");
        let mut row = |k: &str, v: Option<&str>| {
            text.push_str(&format!("  {k:<28}{}\n", clean_or_dash(v)));
        };
        row("patient", t.context.patient.as_deref());
        row(
            "scope",
            t.tokens
                .granted_scopes
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
        );
        row(
            "expires_at",
            t.tokens.expires_at.map(|e| e.to_string()).as_deref(),
        );
        if args.show_token {
            row("access_token", Some(t.tokens.access_token.expose_secret()));
        }
    }
    crate::terminal::print(&text)?;
    Ok(())
}
