//! Issue 8 items 10 and 11 (core side), over real HTTP: hints chosen from what the server said
//! (unknown client, unregistered redirect URI, `aud` differing by a trailing slash, scopes),
//! "start a new launch" once, the introspection error keeping the server's reason, and no raw
//! control character from a server in any error message.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use smart_core::headless::authorize_headless;
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::{
    BearerSource, ClientRegistration, IntrospectionAuth, LaunchError, RefreshOptions,
    StandaloneLaunch,
};
use smart_sandbox::{DEMO_REDIRECT_URI, Sandbox, SandboxConfig};
use support::*;

/// The general hint headless mode used to give whatever the server said.
const OLD_GENERAL_TAIL: &str =
    "it needs a person to sign in, or rejected the client_id or redirect_uri";

/// The whole error chain on one line, as the CLI prints it.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

fn assert_no_raw_controls(message: &str) {
    assert!(
        !message.chars().any(|c| c.is_control()),
        "raw control character in {message:?}"
    );
}

async fn headless_failure(sandbox: &Sandbox, registration: ClientRegistration) -> String {
    let base = sandbox.fhir_base();
    let client = client_with(
        vec![("app", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let err = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect_err("the sandbox refuses");
    one_line(&err)
}

#[tokio::test]
async fn an_unknown_client_id_gets_the_unknown_client_hint() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let message = headless_failure(
        &sandbox,
        ClientRegistration::public(&base, "no-such-app", DEMO_REDIRECT_URI)
            .with_scopes(Scopes::parse(STANDALONE_SCOPES)),
    )
    .await;
    assert!(
        message.contains("does not know this client_id"),
        "{message}"
    );
    assert!(
        message.contains("Unknown client_id"),
        "the server's words: {message}"
    );
    assert!(
        !message.contains("redirect_uri for the client"),
        "{message}"
    );
    assert!(!message.contains(OLD_GENERAL_TAIL), "{message}");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_the_redirect_uri_hint() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let message = headless_failure(
        &sandbox,
        ClientRegistration::public(&base, "demo-public", "http://127.0.0.1:8765/elsewhere")
            .with_scopes(Scopes::parse(STANDALONE_SCOPES)),
    )
    .await;
    assert!(
        message.contains("does not accept this redirect_uri"),
        "{message}"
    );
    assert!(
        !message.contains("does not know this client_id"),
        "{message}"
    );
    assert!(!message.contains(OLD_GENERAL_TAIL), "{message}");
}

#[tokio::test]
async fn an_aud_differing_by_a_trailing_slash_is_named() {
    let sandbox = sandbox().await;
    let base_with_slash = format!("{}/", sandbox.fhir_base());
    let registration =
        ClientRegistration::public(&base_with_slash, "demo-public", DEMO_REDIRECT_URI)
            .with_scopes(Scopes::parse(STANDALONE_SCOPES));
    let client = client_with(
        vec![("app", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let request = client
        .begin_standalone_launch(&base_with_slash, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let err = client
        .complete_launch(&callback)
        .await
        .expect_err("aud refused");
    assert!(matches!(err, LaunchError::Authorization(_)), "{err}");
    let message = one_line(&err);
    assert!(
        message.contains("differ only by a trailing slash"),
        "{message}"
    );
    assert!(!message.contains("its description should say"), "{message}");
}

#[tokio::test]
async fn a_refused_wildcard_scope_gets_the_scope_hint() {
    let mut config = SandboxConfig::default();
    config.profile.reject_wildcard_scopes = true;
    let sandbox = Sandbox::start(config).await.expect("sandbox");
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let err = client
        .complete_launch(&callback)
        .await
        .expect_err("wildcard refused");
    let message = one_line(&err);
    assert!(message.contains("invalid_scope"), "{message}");
    assert!(
        message.contains("does not accept wildcard scopes"),
        "{message}"
    );
    assert!(!message.contains("request fewer scopes"), "{message}");
}

#[tokio::test]
async fn scopes_the_client_may_not_have_get_the_not_allowed_hint() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);
    let request = client
        .begin_standalone_launch(
            &base,
            StandaloneLaunch {
                scopes: Some(Scopes::parse("system/Patient.rs")),
                ..StandaloneLaunch::default()
            },
        )
        .await
        .expect("begin");
    let callback = callback_for(&client, &request).await;
    let err = client
        .complete_launch(&callback)
        .await
        .expect_err("scope refused");
    let message = one_line(&err);
    assert!(message.contains("invalid_scope"), "{message}");
    assert!(message.contains("not allowed these scopes"), "{message}");
}

/// Launches, refreshes (rotating the refresh token), and puts the spent refresh token back, as if
/// another copy of the app had refreshed first. Returns the session and its stale version's
/// successor.
async fn session_with_spent_refresh_token(
    client: &smart_core::SmartClient,
    base: &str,
) -> (
    smart_core::CompletedLaunch,
    smart_core::store::Versioned<smart_core::Session>,
) {
    let done = standalone(client, base).await;
    let stale = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh rotates the refresh token");
    let now = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    client
        .store()
        .compare_and_swap_session(&done.session_id, now.version, &stale.value)
        .await
        .expect("put the spent refresh token back");
    (done, stale)
}

#[tokio::test]
async fn a_rejected_refresh_says_start_a_new_launch_once() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);

    // RefreshError::Rejected, which wraps the token endpoint's invalid_grant.
    let (first, _) = session_with_spent_refresh_token(&client, &base).await;
    let refresh_error = client
        .refresh(&first.session_id, RefreshOptions::default())
        .await
        .expect_err("rejected");
    let message = one_line(&refresh_error);
    assert!(message.contains("invalid_grant"), "{message}");
    assert_eq!(
        message.matches("start a new launch").count(),
        1,
        "{message}"
    );
    // The session is now ended: BearerError::SessionEnded from RefreshError::Ended.
    let source = client
        .session_bearer(&first.session_id)
        .await
        .expect("bearer source");
    let message = one_line(&source.bearer().await.expect_err("ended"));
    assert_eq!(
        message.matches("start a new launch").count(),
        1,
        "{message}"
    );

    // BearerError::SessionEnded from RefreshError::Rejected.
    let (second, stale) = session_with_spent_refresh_token(&client, &base).await;
    let source = client
        .session_bearer(&second.session_id)
        .await
        .expect("bearer source");
    let rejected = smart_core::Bearer {
        generation: stale.version + 2,
        access_token: stale.value.tokens.access_token.clone(),
    };
    let bearer_error = source
        .after_unauthorized(&rejected)
        .await
        .expect_err("refresh rejected");
    let message = one_line(&bearer_error);
    assert!(message.contains("invalid_grant"), "{message}");
    assert_eq!(
        message.matches("start a new launch").count(),
        1,
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_introspection_keeps_the_servers_reason() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let launcher = public_client(&base);
    let done = standalone(&launcher, &base).await;
    let wrong_secret = ClientRegistration::confidential_symmetric(
        &base,
        "demo-confidential",
        ClientSecret::new("not-the-secret"),
        DEMO_REDIRECT_URI,
    );
    let client = client_with(
        vec![("confidential", wrong_secret)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let err = client
        .introspect(
            &base,
            &done.session.tokens.access_token,
            IntrospectionAuth::Client,
        )
        .await
        .expect_err("wrong secret");
    let message = one_line(&err);
    assert!(message.contains("invalid_client"), "{message}");
    assert!(
        message.contains("introspection refused (HTTP 401)"),
        "{message}"
    );
    // The server's error_description, verbatim in the message.
    let smart_core::IntrospectionError::Refused {
        error: Some(error), ..
    } = &err
    else {
        panic!("not an OAuth refusal: {message}");
    };
    let description = error.description.clone().expect("the sandbox says why");
    assert!(message.contains(&description), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Item 10: server text is escaped and HTML becomes readable text.

const HOSTILE_PAGE: &str = "<html><head><title>x</title><style>p{color:red}</style></head><body>\
    <h1>Unknown client &amp; \x1b[2J\x1b]0;pwned\x07 friends</h1>\r\n<p>Try&nbsp;again</p></body></html>";

const HOSTILE_DESCRIPTION: &str = "bad token\x1b[31m red\r\n\u{9b}1A\u{202e}reversed";

async fn hostile_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let config = serde_json::json!({
        "token_endpoint": format!("{origin}/token"),
        "authorization_endpoint": format!("{origin}/authorize"),
        "introspection_endpoint": format!("{origin}/introspect"),
        "capabilities": ["launch-standalone", "client-public"],
    });
    let mut html_config = config.clone();
    html_config["introspection_endpoint"] = format!("{origin}/introspect-html").into();
    let router = Router::new()
        .route(
            "/fhir-html/.well-known/smart-configuration",
            get(move || async move { axum::Json(html_config.clone()) }),
        )
        .route(
            "/fhir/.well-known/smart-configuration",
            get(move || async move { axum::Json(config.clone()) }),
        )
        .route(
            "/authorize",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    HOSTILE_PAGE,
                )
            }),
        )
        .route(
            "/introspect",
            post(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(serde_json::json!({
                        "error": "invalid_request",
                        "error_description": HOSTILE_DESCRIPTION,
                        "error_uri": "https://ehr.example/help\x1b[0m",
                    })),
                )
                    .into_response()
            }),
        )
        .route(
            "/introspect-html",
            post(|| async {
                (
                    StatusCode::FORBIDDEN,
                    [(header::CONTENT_TYPE, "text/html")],
                    HOSTILE_PAGE,
                )
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    origin
}

#[tokio::test]
async fn an_html_error_page_becomes_escaped_readable_text() {
    let origin = hostile_server().await;
    let base = format!("{origin}/fhir");
    let client = client_with(
        vec![(
            "app",
            ClientRegistration::public(&base, "app", DEMO_REDIRECT_URI)
                .with_scopes(Scopes::parse("patient/*.rs")),
        )],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let request = client
        .begin_standalone_launch(&base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let err = authorize_headless(&**client.http(), &request, DEMO_REDIRECT_URI)
        .await
        .expect_err("an error page");
    let message = one_line(&err);
    assert_no_raw_controls(&message);
    assert!(
        message.contains("Unknown client & \\u{1b}[2J\\u{1b}]0;pwned\\u{7} friends"),
        "{message}"
    );
    assert!(message.contains("again"), "{message}");
    assert!(!message.contains("<h1>"), "{message}");
    assert!(!message.contains("color:red"), "{message}");
    assert!(
        message.contains("does not know this client_id"),
        "{message}"
    );
}

#[tokio::test]
async fn an_oauth_error_description_is_escaped() {
    let origin = hostile_server().await;
    let base = format!("{origin}/fhir");
    let client = client_with(
        vec![(
            "app",
            ClientRegistration::public(&base, "app", DEMO_REDIRECT_URI),
        )],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let token = smart_core::secret::AccessToken::new("t".to_owned());
    let err = client
        .introspect(&base, &token, IntrospectionAuth::Bearer(token.clone()))
        .await
        .expect_err("refused");
    let message = one_line(&err);
    assert_no_raw_controls(&message);
    assert!(message.contains("bad token\\u{1b}[31m red"), "{message}");
    assert!(message.contains("\\u{9b}1A\\u{202e}reversed"), "{message}");
    assert!(
        message.contains("https://ehr.example/help\\u{1b}[0m"),
        "{message}"
    );
}

#[tokio::test]
async fn an_html_introspection_refusal_keeps_its_text() {
    let origin = hostile_server().await;
    let base = format!("{origin}/fhir-html");
    let client = client_with(
        vec![(
            "app",
            ClientRegistration::public(&base, "app", DEMO_REDIRECT_URI),
        )],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let token = smart_core::secret::AccessToken::new("t".to_owned());
    let err = client
        .introspect(&base, &token, IntrospectionAuth::Bearer(token.clone()))
        .await
        .expect_err("refused");
    let message = one_line(&err);
    assert_no_raw_controls(&message);
    assert!(
        message.contains("introspection refused (HTTP 403)"),
        "{message}"
    );
    assert!(message.contains("Unknown client & \\u{1b}[2J"), "{message}");
    assert!(!message.contains("<h1>"), "{message}");
}
