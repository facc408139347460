//! Quickstart: a standalone SMART launch against the embedded sandbox, with the library API
//! only — the same calls a web app makes from its launch and redirect handlers.
//!
//! Run it with `cargo run -p quickstart`.

use smart::headless::authorize_headless;
use smart::sandbox::{DEMO_REDIRECT_URI, Sandbox, SandboxConfig};
use smart::scope::Scopes;
use smart::{ClientRegistration, RefreshOptions, StandaloneLaunch};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // An EHR to talk to: the embedded sandbox, on a free port of 127.0.0.1.
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let fhir_base = sandbox.fhir_base();

    // One registration per EHR the app is registered with. The issuer is an allow-list entry:
    // launches from any other `iss` are refused before a single request is sent.
    // `smart::builder()` installs every vendor adapter of the build; `auto` lets the one that
    // recognises the server handle it (here the spec-exact generic adapter).
    let client = smart::builder()
        .registration(
            "sandbox",
            ClientRegistration::public(&fhir_base, "demo-public", DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse("launch/patient patient/*.rs offline_access"))
                .with_adapter("auto"),
        )
        .build()?;

    // 1. The app's "launch" handler: discovery, PKCE, state; then redirect the browser.
    let request = client
        .begin_standalone_launch(&fhir_base, StandaloneLaunch::default())
        .await?;
    println!("redirect the browser to: {}", request.url);

    // (Here the sandbox auto-approves; a real EHR shows its login and patient picker.)
    let callback = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI).await?;

    // 2. The app's redirect handler: state check, code exchange, session stored.
    let launched = client.complete_launch(&callback).await?;
    let session = &launched.session;
    println!("patient in context: {:?}", session.context.patient);
    println!("granted scopes:     {}", session.effective_scopes());
    println!("dropped scopes:     {}", launched.scopes.dropped);

    // 3. Later, before the access token expires: refresh (once, however many tasks ask).
    let refreshed = client
        .refresh(&launched.session_id, RefreshOptions::default())
        .await?;
    println!("refreshed; session version {}", refreshed.version);

    sandbox.shutdown().await;
    Ok(())
}
