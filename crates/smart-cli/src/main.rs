//! `smart`: the command-line face of the framework.
//!
//! It serves the embedded sandbox EHR, inspects servers (`discover`), runs real launches from
//! scripts (`launch --headless`), and narrates a full launch end to end (`demo`). Every command
//! goes through the same library code an app would use; the CLI adds only argument parsing and
//! printing. Failures print one line (`error: …`) and exit with status 1.
//!
//! Output rules (see `terminal`): a closed stdout (`| head`) ends the command quietly; colour only
//! on a terminal and never with `NO_COLOR`; server-supplied text is printed with its control
//! characters escaped; status lines and errors go to stderr, results to stdout.

mod backend;
mod credentials;
mod demo;
mod discover;
mod fhir;
mod fhir_cmd;
mod files;
mod introspect;
mod keys;
mod launch;
mod net;
mod output;
mod probe;
mod registry;
mod sandbox;
mod session_file;
mod session_store;
mod sessions;
mod terminal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// SMART App Launch 2.2 toolkit: sandbox EHR, discovery, headless launches.
#[derive(Debug, Parser)]
#[command(name = "smart", version, about, long_about = None)]
struct Cli {
    /// Log verbosity (-v debug, -vv trace). Secrets are never logged. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Give up on any one network request after SECS seconds (default 30).
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        value_parser = net::parse_timeout,
        allow_hyphen_values = true
    )]
    timeout: Option<std::time::Duration>,
    /// The session store: sqlite://PATH, postgres://…, redis://… or memory:. Default:
    /// sqlite://$XDG_DATA_HOME/smart/sessions.db (~/.local/share/smart/sessions.db). Its key
    /// comes from SMART_STORE_KEY, or a key file created next to the database.
    #[arg(long, global = true, value_name = "URL", env = "SMART_STORE_URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the embedded sandbox EHR on 127.0.0.1.
    Sandbox(sandbox::Args),
    /// Print a FHIR server's SMART configuration and where it came from.
    Discover(discover::Args),
    /// Run an EHR or standalone launch and print the session it produced.
    Launch(launch::Args),
    /// Start the sandbox in-process and narrate a standalone launch, an EHR launch, a FHIR read
    /// and a refresh.
    Demo(demo::Args),
    /// Manage an asymmetric client's signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Host a public JWKS for local testing.
    #[command(subcommand)]
    Jwks(keys::JwksCommand),
    /// Backend services (client_credentials).
    #[command(subcommand)]
    Backend(backend::BackendCommand),
    /// Ask the authorization server whether a token is active (RFC 7662).
    Introspect(introspect::Args),
    /// Read, search and create FHIR resources with a stored session or a backend token.
    Fhir(fhir_cmd::Args),
    /// List, show, remove and import stored sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Probe a SMART server's conformance from outside; exit 1 when a SHALL check fails.
    Probe(probe::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    if let Some(timeout) = cli.timeout {
        net::set_timeout(timeout);
    }
    if let Some(url) = cli.store {
        session_store::set_url(url);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            terminal::eprint_line(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sandbox(args) => sandbox::run(args).await,
            Command::Discover(args) => discover::run(args).await,
            Command::Launch(args) => launch::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Keys(command) => keys::run_keys(command).await,
            Command::Jwks(command) => keys::run_jwks(command).await,
            Command::Backend(command) => backend::run(command).await,
            Command::Introspect(args) => introspect::run(args).await,
            Command::Fhir(args) => fhir_cmd::run(args).await,
            Command::Sessions(command) => sessions::run(command).await,
            Command::Probe(args) => probe::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Error messages quote servers (error_description, OperationOutcome text, URLs).
            let line = output::one_line(&*e);
            let line = smart_core::server_text::excerpt(&line, MAX_ERROR_CHARS);
            terminal::eprint_line(&format!("error: {line}"));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        // The transport's own logs repeat the failure the one `error:` line already reports
        // (rustls' verifier logs every bad certificate at ERROR); they appear with -v.
        0 => "warn,rustls=off,rustls_platform_verifier=off,hyper=off,hyper_util=off,reqwest=off",
        1 => "info,smart_core=debug,smart_sandbox=debug",
        _ => "debug,smart_core=trace,smart_sandbox=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal::colour_allowed(terminal::stderr_is_terminal()))
        .init();
}

/// The longest error line printed; longer ones (a server's whole page in a message) are cut.
const MAX_ERROR_CHARS: usize = 4000;

/// The CLI's error type: anything with a message.
type CliError = Box<dyn std::error::Error + Send + Sync>;

/// What a command returns.
type CliResult = Result<(), CliError>;

/// Loads an asymmetric client's private key (PEM or JWK file).
fn load_keys(
    path: &std::path::Path,
    jku: Option<&str>,
) -> Result<smart_core::ClientKeys, Box<dyn std::error::Error + Send + Sync>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    let key = smart_core::config::load_private_key(&text, None)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = smart_core::ClientKeys::new(key);
    Ok(match jku {
        Some(jku) => keys.with_jku(jku),
        None => keys,
    })
}
