//! `smart launch`: a complete EHR or standalone launch from the command line.
//!
//! With `--headless` the CLI sends the authorization request itself and follows redirects until
//! the redirect URI (which it never connects to); without it, it prints the URL for a browser and
//! reads back the URL the browser was redirected to. Either way the callback goes through
//! `SmartClient::complete_launch`, exactly as in a web app.

use std::io::BufRead;

use smart_core::headless::authorize_headless;
use smart_core::quirks::AuthorizeMethod;
use smart_core::secret::ClientSecret;
use smart_core::{
    AuthorizationRequest, CallbackParams, ClientRegistration, CompletedLaunch, StandaloneLaunch,
};

use crate::terminal::{json_text, outln};
use crate::{CliResult, output};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The FHIR base URL (the EHR's `iss`).
    #[arg(long)]
    iss: String,
    #[command(flatten)]
    credentials: Credentials,
    /// The registered redirect URI.
    #[arg(long)]
    redirect_uri: String,
    /// The vendor adapter, or auto (detect from the server).
    #[arg(long, default_value = "auto", value_parser = crate::registry::adapter_values())]
    adapter: String,
    /// An adapter option, KEY=VALUE, repeatable (as `[clients.x.adapter_options]` in TOML), e.g.
    /// `--adapter-option client_id_header=<Epic client ID>` to send Epic-Client-ID on discovery.
    #[arg(long = "adapter-option", value_name = "KEY=VALUE", value_parser = parse_adapter_option)]
    adapter_options: Vec<(String, serde_json::Value)>,
    /// Space-separated scopes.
    #[arg(long, default_value = "launch/patient patient/*.rs offline_access")]
    scope: String,
    /// The EHR's launch handle: makes this an EHR launch (otherwise standalone).
    #[arg(long, allow_hyphen_values = true)]
    launch: Option<String>,
    /// Perform the authorization request without a browser (for auto-approving servers).
    #[arg(long)]
    headless: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print tokens instead of [redacted].
    #[arg(long)]
    show_tokens: bool,
    /// Save the session (tokens and context, no credentials) to FILE, mode 0600, for `smart fhir --session FILE`.
    #[arg(long, value_name = "FILE")]
    save: Option<std::path::PathBuf>,
}

/// The client's identity and credentials: one flattened group of flags.
#[derive(Debug, clap::Args)]
#[group(id = "credentials", multiple = true)]
pub(crate) struct Credentials {
    /// The client id the EHR assigned.
    #[arg(long)]
    client_id: String,
    /// The client secret (confidential symmetric clients). Prefer the SMART_CLIENT_SECRET variable.
    #[arg(
        long,
        env = "SMART_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    client_secret: Option<String>,
    /// The private key of an asymmetric client (PEM or JWK file; see `smart keys generate`).
    #[arg(long, conflicts_with = "client_secret")]
    key: Option<std::path::PathBuf>,
    /// With --key: send this `jku` (the registered JWKS URL) in assertions.
    #[arg(long, requires = "key")]
    jku: Option<String>,
}

/// `KEY=VALUE` → an adapter option; `true`/`false` become booleans, anything else a string.
fn parse_adapter_option(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`{text}` has an empty KEY"));
    }
    let value = match value {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        other => serde_json::Value::String(other.to_owned()),
    };
    Ok((key.to_owned(), value))
}

pub(crate) async fn run(args: Args) -> CliResult {
    for (flag, value) in [("--iss", &args.iss), ("--redirect-uri", &args.redirect_uri)] {
        let url = url::Url::parse(value).map_err(|e| {
            format!(
                "{flag} `{value}` is not an absolute URL ({e}); e.g. https://ehr.example.org/fhir"
            )
        })?;
        if flag == "--iss" {
            smart_core::http::check_transport_security(&url).map_err(|e| format!("{flag}: {e}"))?;
        }
    }
    if let Some(path) = &args.save {
        // Refuse before the launch, not after it has spent the authorization code.
        crate::files::refuse_symlink(path)?;
    }
    let registration = match (args.credentials.client_secret.as_deref(), &args.credentials.key) {
        (Some(""), _) => return Err("--client-secret is empty; pass the secret the EHR issued, or omit it for a public client".into()),
        (Some(secret), _) => ClientRegistration::confidential_symmetric(
            &args.iss,
            &args.credentials.client_id,
            ClientSecret::new(secret),
            &args.redirect_uri,
        ),
        (None, Some(key)) => ClientRegistration::confidential_asymmetric(
            &args.iss,
            &args.credentials.client_id,
            crate::load_keys(key, args.credentials.jku.as_deref())?,
            &args.redirect_uri,
        ),
        (None, None) => ClientRegistration::public(&args.iss, &args.credentials.client_id, &args.redirect_uri),
    };
    let scopes = crate::terminal::parse_scope_flag(&args.scope);
    if scopes.is_empty() {
        return Err(
            "--scope is empty; pass space-separated scopes such as \"launch/patient patient/*.rs\""
                .into(),
        );
    }
    let mut registration = registration.with_scopes(scopes).with_adapter(&args.adapter);
    for (key, value) in &args.adapter_options {
        registration = registration.with_adapter_option(key.clone(), value.clone());
    }
    if !args.headless {
        // A person pastes the redirect back; a GET URL is the only thing they can open.
        registration.authorize_method = Some(AuthorizeMethod::Get);
    }
    let client = crate::net::client_builder()?
        .registration("cli", registration)
        .build()?;

    let request = match &args.launch {
        Some(launch) => client.begin_ehr_launch(&args.iss, launch).await?,
        None => {
            client
                .begin_standalone_launch(&args.iss, StandaloneLaunch::default())
                .await?
        }
    };
    let callback = if args.headless {
        authorize_headless(&**client.http(), &request, &args.redirect_uri).await?
    } else {
        ask_for_redirect(&request)?
    };
    let done = client.complete_launch(&callback).await?;
    if let Some(path) = &args.save {
        let client_type = match (&args.credentials.client_secret, &args.credentials.key) {
            (Some(_), _) => "confidential-symmetric",
            (None, Some(_)) => "confidential-asymmetric",
            (None, None) => "public",
        };
        crate::session_file::write(
            path,
            &crate::session_file::SavedSession {
                format: 1,
                session_id: done.session_id.clone(),
                session: done.session.clone(),
                client_type: client_type.into(),
                redirect_uri: Some(args.redirect_uri.clone()),
            },
        )?;
        crate::terminal::eprint_line(&format!(
            "session saved to {} (it holds tokens: keep it private)",
            path.display()
        ));
    }
    report(&done, &args)
}

fn ask_for_redirect(
    request: &AuthorizationRequest,
) -> Result<CallbackParams, Box<dyn std::error::Error + Send + Sync>> {
    crate::terminal::eprint_line(&format!(
        "Open this URL in a browser and sign in:\n\n  {}\n",
        crate::terminal::clean(&request.url)
    ));
    crate::terminal::eprint_line(
        "Then paste the full URL your browser was redirected to and press Enter:",
    );
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    // This process began the launch, so it holds the browser binding the callback must carry.
    let binding = request.browser_binding().clone();
    CallbackParams::from_url(line.trim())
        .map(|c| c.with_browser_binding(binding))
        .ok_or_else(|| {
            "that is not a URL; paste the whole address from the browser's address bar".into()
        })
}

fn report(done: &CompletedLaunch, args: &Args) -> CliResult {
    if args.json {
        outln!(
            "{}",
            json_text(&output::launch_json(done, args.show_tokens))?
        )?;
    } else {
        let kind = if args.launch.is_some() {
            "EHR"
        } else {
            "standalone"
        };
        outln!(
            "{kind} launch completed for client {}",
            crate::terminal::clean(&done.session.client_id)
        )?;
        output::print_launch(done, args.show_tokens)?;
    }
    Ok(())
}
