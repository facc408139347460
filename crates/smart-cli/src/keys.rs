//! `smart keys generate` and `smart jwks serve`: the key material of an asymmetric client.
//!
//! An EHR registers the app's **public** keys, either as a JWKS value or, preferably (and for
//! Epic backend apps, mandatorily), as a JWKS URL it fetches. `keys generate` writes the private
//! key (PKCS#8 PEM, readable only by its owner) and the public JWKS; `jwks serve` hosts a JWKS
//! file on 127.0.0.1 for local testing — in production serve the same file over HTTPS from your
//! web server, with a `Cache-Control` header.

use std::path::{Path, PathBuf};

use smart_core::smart_jose::{Algorithm, Jwks, PrivateKey};

use crate::CliResult;
use crate::terminal::outln;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a signing key pair: DIR/private-key.pem and DIR/jwks.json.
    Generate {
        /// RS384 (RSA 3072) or ES384 (P-384).
        #[arg(long, default_value = "ES384")]
        alg: String,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum JwksCommand {
    /// Serve a JWKS file at http://127.0.0.1:PORT/jwks.json (for local testing).
    Serve {
        /// The JWKS file (e.g. from `smart keys generate`).
        #[arg(long)]
        jwks: PathBuf,
        /// Port on 127.0.0.1 (default 0: a free port, printed at start).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

pub(crate) async fn run_keys(command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::Generate { alg, out, force } => generate(&alg, &out, force),
    }
}

fn generate(alg: &str, out: &Path, force: bool) -> CliResult {
    let alg: Algorithm = match alg.to_ascii_uppercase().as_str() {
        "RS384" => Algorithm::RS384,
        "ES384" => Algorithm::ES384,
        other => return Err(format!("--alg {other} is not supported; use RS384 or ES384 (what SMART requires servers to accept)").into()),
    };
    let key_path = out.join("private-key.pem");
    let jwks_path = out.join("jwks.json");
    for path in [&key_path, &jwks_path] {
        crate::files::refuse_symlink(path)?;
        if path.exists() && !force {
            return Err(format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )
            .into());
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let key = PrivateKey::generate(alg)?;
    // Mode 0600 also when --force replaces an existing file; never through a link.
    crate::files::replace(
        &key_path,
        key.to_pkcs8_pem().as_bytes(),
        crate::files::PRIVATE,
    )?;
    let jwks = Jwks::new(vec![key.public_jwk()]);
    let jwks_text = serde_json::to_string_pretty(&jwks)? + "\n";
    crate::files::replace(&jwks_path, jwks_text.as_bytes(), crate::files::PUBLIC)?;
    outln!("generated {alg} key {}", key.kid())?;
    outln!(
        "  private key: {} (keep it secret; never commit it)",
        key_path.display()
    )?;
    outln!(
        "  public JWKS: {} (register its URL, or its contents, with the EHR)",
        jwks_path.display()
    )?;
    Ok(())
}

pub(crate) async fn run_jwks(command: JwksCommand) -> CliResult {
    match command {
        JwksCommand::Serve { jwks, port } => serve(&jwks, port).await,
    }
}

async fn serve(path: &Path, port: u16) -> CliResult {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let jwks: Jwks = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a JWKS ({e}); use the jwks.json from `smart keys generate`",
            path.display()
        )
    })?;
    if jwks.keys.is_empty() {
        return Err(format!("{} has no keys", path.display()).into());
    }
    // Re-serialised from the parsed form, which keeps public members only.
    let body = serde_json::to_string(&jwks)?;
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [
                        (axum::http::header::CONTENT_TYPE, "application/json"),
                        (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port}: {e}; pick another port or use 0")
        })?;
    let addr = listener.local_addr()?;
    outln!(
        "serving {} key(s) at http://{addr}/jwks.json",
        jwks.keys.len()
    )?;
    outln!("Press Ctrl-C to stop.")?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
