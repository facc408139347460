//! The refresh grant: its request, rotation, no rotation, narrower scope (C-13).

use smart_core::RefreshOptions;
use smart_core::scope::Scopes;

use super::env::{Env, Kind, SCOPES, form_field};
use super::{Harness, attempt, client_check, ensure};
use crate::model::Status;
use crate::recording::Exchange;

client_check!(
    C_13_1,
    "C-13.1",
    Shall,
    "Refresh: `grant_type=refresh_token` with the issued refresh token and the same client authentication",
    "SMART App Launch 2.2 app-launch §Refresh access token; RFC 6749 §6"
);
client_check!(
    C_13_2,
    "C-13.2",
    Should,
    "A rotated refresh token replaces the old one in the next refresh",
    "SMART App Launch 2.2 app-launch §Refresh (new refresh_token); RFC 6749 §6"
);
client_check!(
    C_13_3,
    "C-13.3",
    Shall,
    "Without rotation, the client keeps the refresh token it has and refreshes again",
    "SMART App Launch 2.2 app-launch §Refresh (refresh_token optional in the response)"
);
client_check!(
    C_13_4,
    "C-13.4",
    Shall,
    "A narrower refresh sends a `scope` within the grant",
    "SMART App Launch 2.2 app-launch §Refresh (scope a subset); RFC 6749 §6"
);

/// `field` of the JSON response to `e`.
fn response_field(e: &Exchange, field: &str) -> Option<String> {
    e.response_json()
        .and_then(|v| v[field].as_str().map(str::to_owned))
}

/// C-13.1.
pub(crate) async fn c_13_1(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Symmetric, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let refreshed = env
        .client
        .refresh(&done.session_id, RefreshOptions::default())
        .await;
    let code = env.grants("authorization_code");
    let refreshes = env.grants("refresh_token");
    ensure!(
        refreshes.len() == 1,
        "{} refresh requests for one refresh",
        refreshes.len()
    );
    let issued = code
        .first()
        .and_then(|e| response_field(e, "refresh_token"));
    ensure!(
        issued.is_some(),
        "the code exchange issued no refresh token"
    );
    let r = &refreshes[0];
    ensure!(r.method == "POST", "the refresh used {}", r.method);
    ensure!(
        form_field(r, "refresh_token") == issued,
        "the refresh did not send the issued refresh token"
    );
    ensure!(
        form_field(r, "code").is_none() && form_field(r, "code_verifier").is_none(),
        "the refresh carried code-exchange fields"
    );
    let first_auth = code
        .first()
        .and_then(|e| e.header("authorization").map(str::to_owned));
    ensure!(
        r.header("authorization").is_some()
            && r.header("authorization").map(str::to_owned) == first_auth,
        "the refresh did not authenticate the client as the code exchange did"
    );
    attempt!("refresh", refreshed);
    Status::Pass
}

/// C-13.2.
pub(crate) async fn c_13_2(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Symmetric, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let first = env
        .client
        .refresh(&done.session_id, RefreshOptions::default())
        .await;
    let second = env
        .client
        .refresh(
            &done.session_id,
            RefreshOptions {
                force: true,
                ..RefreshOptions::default()
            },
        )
        .await;
    let refreshes = env.grants("refresh_token");
    ensure!(
        refreshes.len() == 2,
        "{} refresh requests for two refreshes",
        refreshes.len()
    );
    let rotated = response_field(&refreshes[0], "refresh_token");
    ensure!(rotated.is_some(), "the sandbox did not rotate (setup)");
    ensure!(
        form_field(&refreshes[1], "refresh_token") == rotated,
        "the second refresh did not use the rotated refresh token"
    );
    attempt!("first refresh", first);
    attempt!("second refresh", second);
    Status::Pass
}

/// C-13.3.
pub(crate) async fn c_13_3(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_with(&h, Kind::Symmetric, SCOPES, |b| {
            b.rotate_refresh_tokens = false;
            b.refresh_returns_refresh_token = false;
        })
        .await
    );
    let done = attempt!("launch", env.standalone().await);
    let first = env
        .client
        .refresh(&done.session_id, RefreshOptions::default())
        .await;
    let second = env
        .client
        .refresh(
            &done.session_id,
            RefreshOptions {
                force: true,
                ..RefreshOptions::default()
            },
        )
        .await;
    let issued = env
        .grants("authorization_code")
        .first()
        .and_then(|e| response_field(e, "refresh_token"));
    let refreshes = env.grants("refresh_token");
    ensure!(
        refreshes.len() == 2,
        "{} refresh requests for two refreshes",
        refreshes.len()
    );
    for r in &refreshes {
        ensure!(
            form_field(r, "refresh_token") == issued,
            "a refresh did not send the (unrotated) refresh token the code exchange issued"
        );
    }
    attempt!("first refresh", first);
    attempt!("second refresh", second);
    Status::Pass
}

/// C-13.4.
pub(crate) async fn c_13_4(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Symmetric, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let narrower = Scopes::parse("patient/Patient.rs offline_access");
    let refreshed = env
        .client
        .refresh(
            &done.session_id,
            RefreshOptions {
                scope: Some(narrower),
                ..RefreshOptions::default()
            },
        )
        .await;
    let granted = env
        .grants("authorization_code")
        .first()
        .and_then(|e| response_field(e, "scope"))
        .map(|s| Scopes::parse(&s))
        .unwrap_or_default();
    let refreshes = env.grants("refresh_token");
    ensure!(refreshes.len() == 1, "{} refresh requests", refreshes.len());
    let Some(sent) = form_field(&refreshes[0], "scope") else {
        return Status::Fail("the narrower refresh sent no `scope`".into());
    };
    let sent = Scopes::parse(&sent);
    for s in sent.iter() {
        ensure!(
            granted.covers(s),
            "the refresh asked for `{s}`, which was not granted"
        );
    }
    ensure!(
        !sent.iter().any(|s| s.to_string() == "patient/*.rs"),
        "the refresh asked for the whole grant, not the narrower scope"
    );
    attempt!("refresh", refreshed);
    Status::Pass
}
