//! A web app maps every framework error to a response with one `match` on its kind: real
//! failures (over 127.0.0.1 against the sandbox, or a port nothing listens on) land in the kind
//! that says what to do.

mod support;

use smart_core::{
    CallbackParams, ErrorKind, LaunchError, RefreshOptions, SessionId, StandaloneLaunch,
};
use support::*;

/// What a web app would answer, decided by the kind alone.
fn response_for(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::RelaunchNeeded => (400, "start over"),
        ErrorKind::SessionEnded => (401, "sign in again"),
        ErrorKind::Denied => (403, "access was denied"),
        ErrorKind::NotFound => (404, "not found"),
        ErrorKind::Conflict => (409, "changed meanwhile"),
        ErrorKind::InvalidRequest => (400, "invalid request"),
        ErrorKind::Temporary => (503, "try again later"),
        ErrorKind::Misconfigured | ErrorKind::ServerBroken | ErrorKind::Storage => {
            (500, "the operators were told")
        }
    }
}

#[tokio::test]
async fn one_match_on_the_kind_maps_real_failures_to_responses() {
    let sandbox = sandbox().await;
    let base = sandbox.fhir_base();
    let client = public_client(&base);

    // A callback whose state was never issued.
    let replayed = client
        .complete_launch(&CallbackParams::from_query("code=abc&state=never-issued"))
        .await
        .expect_err("unknown state");
    assert!(matches!(replayed, LaunchError::UnknownState));
    assert_eq!(response_for(replayed.kind()), (400, "start over"));

    // An issuer no registration covers: nothing is sent, and it is a configuration matter.
    let unknown = client
        .begin_standalone_launch(
            "https://elsewhere.example/fhir",
            StandaloneLaunch::default(),
        )
        .await
        .expect_err("unknown issuer");
    assert_eq!(response_for(unknown.kind()).0, 500);
    assert!(!unknown.is_temporary());

    // A session that does not exist.
    let gone = client
        .refresh(
            &SessionId::new("no-such-session"),
            RefreshOptions::default(),
        )
        .await
        .expect_err("no session");
    assert_eq!(response_for(gone.kind()), (401, "sign in again"));

    // A server that cannot be reached.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let down = format!("http://127.0.0.1:{port}/fhir");
    let unreachable = public_client(&down)
        .begin_standalone_launch(&down, StandaloneLaunch::default())
        .await
        .expect_err("nothing listens");
    assert_eq!(response_for(unreachable.kind()), (503, "try again later"));
    assert!(unreachable.is_temporary());
    // The cause is kept as a source, not flattened into a string.
    assert!(std::error::Error::source(&unreachable).is_some());
}
