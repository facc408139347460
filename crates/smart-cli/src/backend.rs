//! `smart backend token`: a backend-services access token (`client_credentials` with a signed
//! assertion).

use serde_json::json;
use smart_core::ClientRegistration;
use smart_core::token::now_unix;

use crate::CliResult;
use crate::credentials::Credentials;
use crate::terminal::{clean, json_text, outln};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BackendCommand {
    /// Request an access token for a backend client.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The FHIR base URL.
    #[arg(long)]
    iss: String,
    /// The backend client's --client-id and --key (and optionally --jku).
    #[command(flatten)]
    credentials: Credentials,
    /// Space-separated scopes, usually system/….
    #[arg(long)]
    scope: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Print the token itself instead of hiding it.
    #[arg(long)]
    show_tokens: bool,
}

pub(crate) async fn run(command: BackendCommand) -> CliResult {
    let BackendCommand::Token(args) = command;
    let scopes = crate::terminal::parse_scope_flag(&args.scope);
    if scopes.is_empty() {
        return Err(
            "--scope is empty; pass the scopes to request, e.g. \"system/Patient.rs\"".into(),
        );
    }
    let client_id = args.credentials.client_id("a backend token")?;
    let keys = args.credentials.keys("a backend token")?;
    let client = crate::net::client_builder()?
        .registration(
            "cli",
            ClientRegistration::backend(&args.iss, client_id, keys, scopes.clone()),
        )
        .build()?;
    let token = client.backend_token_source("cli", scopes)?.token().await?;
    let shown = if args.show_tokens {
        token.access_token.expose_secret()
    } else {
        "[redacted]"
    };
    let expires_in = token.expires_at.saturating_sub(now_unix());
    if args.json {
        let out = json!({
            "access_token": shown,
            "scope": token.scopes.to_string(),
            "expires_at": token.expires_at,
            "expires_in": expires_in,
        });
        outln!("{}", json_text(&out)?)?;
    } else {
        outln!("backend token for {}", clean(client_id))?;
        outln!("  granted        {}", clean(&token.scopes.to_string()))?;
        outln!(
            "  access token   {} (expires in {expires_in} s)",
            clean(shown)
        )?;
    }
    Ok(())
}
