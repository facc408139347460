//! `smart launch`: a complete EHR or standalone launch from the command line.
//!
//! With `--headless` the CLI sends the authorization request itself and follows redirects until
//! the redirect URI (which it never connects to); without it, it prints the URL for a browser and
//! reads back the URL the browser was redirected to. Either way the callback goes through
//! `SmartClient::complete_launch`, exactly as in a web app.
//!
//! The session goes into the session store (`session_store`) under a printed name, so that
//! `smart fhir` in a later process finds it without any file argument.

use std::io::BufRead;

use smart_core::headless::authorize_headless;
use smart_core::quirks::AuthorizeMethod;
use smart_core::{AuthorizationRequest, CallbackParams, CompletedLaunch, StandaloneLaunch};

use crate::credentials::Credentials;
use crate::session_store::{NewEntry, SessionStore, registration_name};
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
    /// Name the stored session NAME instead of `<client>-<n>` (for `smart fhir --session NAME`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print the tokens themselves instead of hiding them.
    #[arg(long)]
    show_tokens: bool,
    /// Retired: sessions are stored in the session store (`smart sessions list`).
    #[arg(long, value_name = "FILE", hide = true)]
    save: Option<std::path::PathBuf>,
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
    if args.save.is_some() {
        return Err("--save is retired: `smart launch` stores the session in the session store and prints its name (see `smart sessions list`); move old files there with `smart sessions import FILE`".into());
    }
    if let Some(name) = &args.name {
        crate::session_store::check_name(name)?;
    }
    let (registration, client_type) = args
        .credentials
        .launch_registration(&args.iss, &args.redirect_uri)?;
    let client_id = args.credentials.client_id("a launch")?.to_owned();
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
    // Opened before the launch: a store that cannot be opened must not cost an authorization.
    let sessions = SessionStore::open().await?;
    let client = crate::net::client_builder()?
        .registration(registration_name(&client_id), registration)
        .store(sessions.client_store())
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
    let name = sessions
        .add(NewEntry {
            session_id: done.session_id.clone(),
            client_id,
            client_type,
            redirect_uri: args.redirect_uri.clone(),
            adapter: args.adapter.clone(),
            adapter_options: args.adapter_options.iter().cloned().collect(),
            jku: args.credentials.jku.clone(),
            name: args.name.clone(),
        })
        .await?;
    report(&done, &name, &args)
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

fn report(done: &CompletedLaunch, name: &str, args: &Args) -> CliResult {
    if args.json {
        outln!(
            "{}",
            json_text(&output::launch_json(done, name, args.show_tokens))?
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
        output::print_launch(done, name, args.show_tokens)?;
    }
    Ok(())
}
