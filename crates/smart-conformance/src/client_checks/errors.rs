//! The error cases a robust client must handle, as `C-E…` checks: the sandbox is
//! switched into one deviation, and the check looks at the client's result and at what it sent.

use std::sync::Arc;

use smart_core::http::{HttpClient, ReqwestHttpClient};
use smart_core::{CallbackParams, LaunchError, RefreshOptions};
use smart_fhir::FhirClient;
use smart_sandbox::{DiscoveryMode, IdTokenFault, IssParameter, LaunchDefaults};

use super::env::{ALLOWED, Env, Kind, SCOPES};
use super::{CLIENT_ID, Harness, attempt, client_check, ensure};
use crate::model::Status;

client_check!(
    C_E01,
    "C-E01",
    Should,
    "Without `.well-known/smart-configuration`, discovery falls back to `metadata` and the launch works",
    "SMART App Launch 2.2 conformance (CapabilityStatement oauth-uris)"
);
client_check!(
    C_E02,
    "C-E02",
    Should,
    "Relative endpoint URLs in discovery are resolved against the FHIR base",
    "SMART App Launch 2.2 conformance (endpoint URLs); RFC 3986 §5.2"
);
client_check!(
    C_E03,
    "C-E03",
    Shall,
    "`error=access_denied` ends the launch with an authorization error and no token request",
    "RFC 6749 §4.1.2.1"
);
client_check!(
    C_E04,
    "C-E04",
    Shall,
    "A redirect with a wrong `state` is refused before any code exchange",
    "RFC 6749 §10.12; SMART App Launch 2.2 app-launch (state)"
);
client_check!(
    C_E05,
    "C-E05",
    Shall,
    "A redirect without `state` is refused before any code exchange",
    "RFC 6749 §10.12"
);
client_check!(
    C_E06,
    "C-E06",
    Shall,
    "A redirect whose `iss` is another issuer is refused before any code exchange",
    "RFC 9207 §2.4"
);
client_check!(
    C_E07,
    "C-E07",
    Shall,
    "A redirect without `iss` from a server that advertises it is refused before any code exchange",
    "RFC 9207 §2.4; RFC 8414 authorization_response_iss_parameter_supported"
);
client_check!(
    C_E08,
    "C-E08",
    Should,
    "Fewer scopes granted than requested are reported to the app",
    "SMART App Launch 2.2 scopes-and-launch-context (check granted scopes)"
);
client_check!(
    C_E09,
    "C-E09",
    Should,
    "A missing `patient` after `launch/patient` is reported to the app",
    "SMART App Launch 2.2 scopes-and-launch-context §launch/patient"
);
client_check!(
    C_E10,
    "C-E10",
    Shall,
    "`token_type: bearer` (lower case) is accepted",
    "RFC 6749 §5.1, §7.1 (token type case-insensitive)"
);
client_check!(
    C_E11,
    "C-E11",
    Shall,
    "`invalid_grant` on refresh ends the session without retrying the dead refresh token",
    "RFC 6749 §5.2"
);
client_check!(
    C_E12,
    "C-E12",
    Shall,
    "An `id_token` with a bad signature is rejected",
    "OpenID Connect Core §3.1.3.7 step 6; SMART App Launch 2.2 §OpenID Connect"
);
client_check!(
    C_E13,
    "C-E13",
    Shall,
    "An `id_token` for another audience is rejected",
    "OpenID Connect Core §3.1.3.7 step 3"
);
client_check!(
    C_E14,
    "C-E14",
    Shall,
    "An `id_token` with `alg: none` or HS256 keyed with the public key is rejected",
    "OpenID Connect Core §3.1.3.7 steps 6-8; RFC 8725 §3.1"
);
client_check!(
    C_E15,
    "C-E15",
    Shall,
    "An expired `id_token`, or one from another issuer, is rejected",
    "OpenID Connect Core §3.1.3.7 steps 2 and 9"
);
client_check!(
    C_E16,
    "C-E16",
    Should,
    "A rotated signing key (`kid` not yet seen) is accepted after refetching the JWKS",
    "OpenID Connect Core §10.1.1"
);
client_check!(
    C_E17,
    "C-E17",
    Should,
    "A FHIR 401 `invalid_token` leads to one refresh and one retry",
    "RFC 6750 §3.1"
);
client_check!(
    C_E18,
    "C-E18",
    Should,
    "A token endpoint answering `temporarily_unavailable` (503) gives a temporary error, without a retry storm",
    "RFC 6749 §5.2, RFC 9110 §15.6.4"
);
client_check!(
    C_E19,
    "C-E19",
    Should,
    "A FHIR 403 `insufficient_scope` is surfaced without a refresh",
    "RFC 6750 §3.1"
);

/// C-E01.
pub(crate) async fn c_e01(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_with(&h, Kind::Public, SCOPES, |b| b.discovery =
            DiscoveryMode::MissingWellKnown)
        .await
    );
    attempt!("launch", env.standalone().await);
    ensure!(
        !env.token_requests().is_empty(),
        "no token request reached the token endpoint named in metadata"
    );
    Status::Pass
}

/// C-E02.
pub(crate) async fn c_e02(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_with(&h, Kind::Public, SCOPES, |b| b.discovery =
            DiscoveryMode::RelativeUrls)
        .await
    );
    attempt!("launch", env.standalone().await);
    ensure!(
        !env.authorize_requests().is_empty() && !env.token_requests().is_empty(),
        "the resolved authorize and token endpoints were not used"
    );
    Status::Pass
}

/// C-E03.
pub(crate) async fn c_e03(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    env.register(
        ALLOWED,
        LaunchDefaults {
            approve: false,
            ..LaunchDefaults::default()
        },
    );
    let request = attempt!("begin", env.begin().await);
    let callback = attempt!("authorize", env.authorize(&request).await);
    ensure!(
        callback.get("error") == Some("access_denied"),
        "setup: the sandbox did not deny"
    );
    let result = env.complete(&callback).await;
    ensure!(
        matches!(result, Err(LaunchError::Authorization(_))),
        "a denied authorization gave {}",
        describe(&result)
    );
    ensure!(
        env.token_requests().is_empty(),
        "a token request followed the denial"
    );
    Status::Pass
}

fn describe<T>(r: &Result<T, LaunchError>) -> String {
    match r {
        Ok(_) => "a completed launch".into(),
        Err(e) => format!("the error `{e}`"),
    }
}

/// A redirect like `callback` with `state` replaced (or removed when `None`).
fn with_state(
    callback: &CallbackParams,
    state: Option<&str>,
    binding: &smart_core::BrowserBinding,
) -> CallbackParams {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for name in ["code", "iss"] {
        if let Some(v) = callback.get(name) {
            pairs.push((name.into(), v.into()));
        }
    }
    if let Some(s) = state {
        pairs.push(("state".into(), s.into()));
    }
    CallbackParams::from_pairs(pairs).with_browser_binding(binding.clone())
}

/// C-E04.
pub(crate) async fn c_e04(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let request = attempt!("begin", env.begin().await);
    let callback = attempt!("authorize", env.authorize(&request).await);
    let forged = with_state(
        &callback,
        Some("an-attacker-chosen-state-value-0123456789"),
        request.browser_binding(),
    );
    let result = env.complete(&forged).await;
    ensure!(
        result.is_err(),
        "a redirect with a wrong state completed the launch"
    );
    ensure!(
        env.token_requests().is_empty(),
        "the code of a redirect with a wrong state was exchanged"
    );
    Status::Pass
}

/// C-E05.
pub(crate) async fn c_e05(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let request = attempt!("begin", env.begin().await);
    let callback = attempt!("authorize", env.authorize(&request).await);
    let stripped = with_state(&callback, None, request.browser_binding());
    let result = env.complete(&stripped).await;
    ensure!(
        result.is_err(),
        "a redirect without state completed the launch"
    );
    ensure!(
        env.token_requests().is_empty(),
        "the code of a redirect without state was exchanged"
    );
    Status::Pass
}

async fn refused_for_iss(h: Harness, iss: IssParameter) -> Status {
    let env = attempt!(
        "setup",
        Env::start_with(&h, Kind::Public, SCOPES, |b| b.authorization_response_iss =
            iss)
        .await
    );
    let request = attempt!("begin", env.begin().await);
    let callback = attempt!("authorize", env.authorize(&request).await);
    let result = env.complete(&callback).await;
    ensure!(
        matches!(
            result,
            Err(LaunchError::IssuerParameterMismatch { .. }
                | LaunchError::MissingIssuerParameter { .. })
        ),
        "the redirect gave {}",
        describe(&result)
    );
    ensure!(env.token_requests().is_empty(), "the code was exchanged");
    Status::Pass
}

/// C-E06.
pub(crate) async fn c_e06(h: Harness) -> Status {
    refused_for_iss(h, IssParameter::Wrong).await
}

/// C-E07.
pub(crate) async fn c_e07(h: Harness) -> Status {
    refused_for_iss(h, IssParameter::Omitted).await
}

/// C-E08.
pub(crate) async fn c_e08(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start(
            &h,
            Kind::Public,
            "launch/patient patient/*.rs user/Practitioner.rs"
        )
        .await
    );
    env.register("launch/patient patient/*.rs", LaunchDefaults::default());
    let done = attempt!("launch", env.standalone().await);
    ensure!(
        !done.scopes.is_complete(),
        "the launch reports every requested scope as granted"
    );
    ensure!(
        done.scopes
            .dropped
            .iter()
            .any(|s| s.to_string() == "user/Practitioner.rs"),
        "`user/Practitioner.rs` was not granted but is not reported as dropped"
    );
    Status::Pass
}

/// C-E09.
pub(crate) async fn c_e09(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start(&h, Kind::Public, "launch/patient user/*.rs").await
    );
    // No patient scope of any kind is granted, so the server establishes no patient.
    env.register("user/*.rs", LaunchDefaults::default());
    match env.standalone().await {
        // Refusing the launch is a way to report it.
        Err(_) => Status::Pass,
        Ok(done) => {
            ensure!(
                done.session.context.patient.is_none(),
                "setup: the sandbox still sent a patient"
            );
            ensure!(
                done.missing_context.iter().any(|m| m.contains("patient")),
                "the launch has no patient but reports no missing context ({:?})",
                done.missing_context
            );
            Status::Pass
        }
    }
}

/// C-E10.
pub(crate) async fn c_e10(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_with(&h, Kind::Public, SCOPES, |b| b.lowercase_token_type = true).await
    );
    let done = attempt!("launch", env.standalone().await);
    let said_lower = env
        .token_requests()
        .iter()
        .filter_map(|e| e.response_json())
        .any(|v| v["token_type"] == "bearer");
    ensure!(said_lower, "setup: the sandbox did not answer `bearer`");
    let bearer = attempt!(
        "session bearer",
        env.client.session_bearer(&done.session_id).await
    );
    let fhir = FhirClient::new(env.client.http().clone(), Arc::new(bearer));
    attempt!("FHIR read", fhir.read_json("Patient", "pat-1").await);
    Status::Pass
}

/// C-E11.
pub(crate) async fn c_e11(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let issued = env
        .grants("authorization_code")
        .first()
        .and_then(|e| e.response_json())
        .and_then(|v| v["refresh_token"].as_str().map(str::to_owned));
    let Some(issued) = issued else {
        return Status::Fail("setup: no refresh token was issued".into());
    };
    attempt!(
        "first refresh",
        env.client
            .refresh(&done.session_id, RefreshOptions::default())
            .await
    );
    // Someone replays the rotated-out token: the server revokes the whole grant.
    attempt!("replay", replay_refresh(&env, &issued).await);
    let before = env.grants("refresh_token").len();
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
    ensure!(second.is_err(), "a refresh of a revoked grant succeeded");
    let third = env
        .client
        .refresh(
            &done.session_id,
            RefreshOptions {
                force: true,
                ..RefreshOptions::default()
            },
        )
        .await;
    ensure!(
        third.is_err(),
        "the session was still usable after invalid_grant"
    );
    let sent = env.grants("refresh_token").len() - before;
    ensure!(
        sent == 1,
        "{sent} refresh requests after the grant was revoked (expected exactly 1: no retry, and none once the session ended)"
    );
    Status::Pass
}

/// Sends a refresh with `token` outside the client (as an attacker with a stolen token would).
async fn replay_refresh(env: &Env, token: &str) -> Result<(), String> {
    let http = ReqwestHttpClient::new().map_err(|e| e.to_string())?;
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", token)
        .append_pair("client_id", CLIENT_ID)
        .finish();
    let request = http::Request::builder()
        .method("POST")
        .uri(env.sandbox.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into_bytes())
        .map_err(|e| e.to_string())?;
    let response = http.execute(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        return Err("the sandbox accepted a rotated-out refresh token".into());
    }
    Ok(())
}

async fn id_token_rejected(h: Harness, faults: &[IdTokenFault]) -> Status {
    for fault in faults {
        let env = attempt!(
            "setup",
            Env::start_with(&h, Kind::Public, SCOPES, |b| b.id_token_fault = *fault).await
        );
        let request = attempt!("begin", env.begin().await);
        let callback = attempt!("authorize", env.authorize(&request).await);
        let result = env.complete(&callback).await;
        ensure!(
            matches!(result, Err(LaunchError::Identity(_))),
            "an id_token with fault {fault:?} gave {}",
            describe(&result)
        );
    }
    Status::Pass
}

/// C-E12.
pub(crate) async fn c_e12(h: Harness) -> Status {
    id_token_rejected(h, &[IdTokenFault::BadSignature]).await
}

/// C-E13.
pub(crate) async fn c_e13(h: Harness) -> Status {
    id_token_rejected(h, &[IdTokenFault::WrongAudience]).await
}

/// C-E14.
pub(crate) async fn c_e14(h: Harness) -> Status {
    id_token_rejected(
        h,
        &[IdTokenFault::AlgNone, IdTokenFault::Hs256WithPublicKey],
    )
    .await
}

/// C-E15.
pub(crate) async fn c_e15(h: Harness) -> Status {
    id_token_rejected(h, &[IdTokenFault::Expired, IdTokenFault::WrongIssuer]).await
}

/// C-E16.
pub(crate) async fn c_e16(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    attempt!("first launch", env.standalone().await);
    attempt!("rotate", env.sandbox.rotate_signing_key());
    let done = attempt!("launch after rotation", env.standalone().await);
    ensure!(
        done.session.identity.is_some(),
        "no verified identity after the key rotation"
    );
    Status::Pass
}

/// C-E17.
pub(crate) async fn c_e17(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let bearer = attempt!(
        "session bearer",
        env.client.session_bearer(&done.session_id).await
    );
    let fhir = FhirClient::new(env.client.http().clone(), Arc::new(bearer));
    attempt!("first read", fhir.read_json("Patient", "pat-1").await);
    env.sandbox.expire_access_tokens();
    let second = fhir.read_json("Patient", "pat-1").await;
    let refreshes = env.grants("refresh_token").len();
    ensure!(
        refreshes == 1,
        "{refreshes} refreshes after one 401 invalid_token (expected 1)"
    );
    let reads = env.fhir_requests();
    let statuses: Vec<Option<u16>> = reads.iter().map(|e| e.status).collect();
    ensure!(
        statuses == [Some(200), Some(401), Some(200)],
        "FHIR statuses were {statuses:?}; expected one 401 and one retry"
    );
    attempt!("read after the 401", second);
    Status::Pass
}

/// C-E18.
pub(crate) async fn c_e18(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let request = attempt!("begin", env.begin().await);
    let callback = attempt!("authorize", env.authorize(&request).await);
    env.sandbox.set_behavior(|b| b.token_unavailable = 100);
    let result = env.complete(&callback).await;
    let Err(e) = result else {
        return Status::Fail("the launch completed although every token request got 503".into());
    };
    ensure!(e.is_temporary(), "`{e}` is not reported as temporary");
    let sent = env.token_requests().len();
    ensure!(
        (1..=3).contains(&sent),
        "{sent} token requests for one completion (expected at most 3)"
    );
    Status::Pass
}

/// C-E19.
pub(crate) async fn c_e19(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start(
            &h,
            Kind::Public,
            "launch/patient patient/Patient.rs offline_access"
        )
        .await
    );
    let done = attempt!("launch", env.standalone().await);
    let bearer = attempt!(
        "session bearer",
        env.client.session_bearer(&done.session_id).await
    );
    let fhir = FhirClient::new(env.client.http().clone(), Arc::new(bearer));
    let result = fhir.read_json("Practitioner", "prac-1").await;
    let forbidden = env.fhir_requests().iter().any(|e| e.status == Some(403));
    ensure!(forbidden, "setup: the sandbox did not answer 403");
    ensure!(result.is_err(), "a 403 read was reported as a success");
    ensure!(
        env.grants("refresh_token").is_empty(),
        "a 403 insufficient_scope triggered a refresh"
    );
    Status::Pass
}

client_check!(
    C_E20,
    "C-E20",
    Should,
    "A short-lived access token is refreshed before it expires, not after a 401",
    "SMART App Launch 2.2 app-launch (expires_in); RFC 6749 §5.1"
);
client_check!(
    C_E21,
    "C-E21",
    Should,
    "A FHIR 503 is retried a bounded number of times, without a token refresh",
    "RFC 9110 §15.6.4, §10.2.3 (Retry-After)"
);
client_check!(
    C_E22,
    "C-E22",
    Should,
    "A relative `fhirUser` is resolved against the FHIR base",
    "SMART App Launch 2.2 scopes-and-launch-context §fhirUser"
);

/// C-E20.
pub(crate) async fn c_e20(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_with(&h, Kind::Public, SCOPES, |b| {
            b.access_token_lifetime = std::time::Duration::from_secs(4);
        })
        .await
    );
    let done = attempt!("launch", env.standalone().await);
    let bearer = attempt!(
        "session bearer",
        env.client.session_bearer(&done.session_id).await
    );
    let fhir = FhirClient::new(env.client.http().clone(), Arc::new(bearer));
    // Inside the refresh margin (half of a 4 s lifetime; token times are whole seconds), before
    // the expiry.
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let read = fhir.read_json("Patient", "pat-1").await;
    let refreshes = env.grants("refresh_token").len();
    let unauthorized = env
        .fhir_requests()
        .iter()
        .filter(|e| e.status == Some(401))
        .count();
    ensure!(
        refreshes >= 1,
        "the nearly expired token was used without a refresh"
    );
    ensure!(
        unauthorized == 0,
        "{unauthorized} FHIR request(s) were sent with an expired token"
    );
    attempt!("FHIR read", read);
    Status::Pass
}

/// C-E21.
pub(crate) async fn c_e21(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let done = attempt!("launch", env.standalone().await);
    let bearer = attempt!(
        "session bearer",
        env.client.session_bearer(&done.session_id).await
    );
    let fhir = FhirClient::new(env.client.http().clone(), Arc::new(bearer));
    env.sandbox.set_behavior(|b| b.fhir_unavailable = 1);
    let read = fhir.read_json("Patient", "pat-1").await;
    let statuses: Vec<Option<u16>> = env.fhir_requests().iter().map(|e| e.status).collect();
    ensure!(
        statuses.first() == Some(&Some(503)),
        "setup: the sandbox did not answer 503 ({statuses:?})"
    );
    ensure!(
        statuses.len() <= 4,
        "{} FHIR requests for one read after one 503",
        statuses.len()
    );
    ensure!(
        env.grants("refresh_token").is_empty(),
        "a 503 triggered a token refresh"
    );
    match read {
        Ok(_) => Status::Pass,
        Err(e) if e.is_temporary() => Status::Pass,
        Err(e) => Status::Fail(format!("a 503 gave a non-temporary error: {e}")),
    }
}

/// C-E22.
pub(crate) async fn c_e22(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_with(&h, Kind::Public, SCOPES, |b| b.relative_fhir_user = true).await
    );
    let done = attempt!("launch", env.standalone().await);
    let Some(identity) = done.session.identity else {
        return Status::Fail("no verified identity".into());
    };
    let Some(user) = identity.fhir_user else {
        return Status::Fail("the relative fhirUser was dropped".into());
    };
    let expected = format!("{}/Practitioner/prac-1", env.base);
    ensure!(
        user.url == expected,
        "fhirUser resolved to {}, expected {expected}",
        user.url
    );
    Status::Pass
}

client_check!(
    C_E23,
    "C-E23",
    Should,
    "A token response without `expires_in` is accepted and the token used",
    "RFC 6749 §5.1 (expires_in RECOMMENDED); SMART App Launch 2.2 app-launch"
);
client_check!(
    C_E24,
    "C-E24",
    Shall,
    "A 2.0-style `fhirContext` (an array of reference strings) is accepted as launch context",
    "SMART App Launch 2.2 scopes-and-launch-context §fhirContext (2.0 string form)"
);
client_check!(
    C_E25,
    "C-E25",
    Should,
    "v1 scopes granted for a v2 request are recognised as the scopes requested",
    "SMART App Launch 2.2 scopes-and-launch-context §Scopes for requesting clinical data (v1 and v2)"
);

/// C-E23.
pub(crate) async fn c_e23(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_editing_tokens(&h, Kind::Public, SCOPES, |m| {
            m.remove("expires_in");
        })
        .await
    );
    let done = attempt!("launch", env.standalone().await);
    let bearer = attempt!(
        "session bearer",
        env.client.session_bearer(&done.session_id).await
    );
    let fhir = FhirClient::new(env.client.http().clone(), Arc::new(bearer));
    attempt!("FHIR read", fhir.read_json("Patient", "pat-1").await);
    Status::Pass
}

/// C-E24.
pub(crate) async fn c_e24(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_editing_tokens(&h, Kind::Public, SCOPES, |m| {
            m.insert(
                "fhirContext".into(),
                serde_json::json!(["Encounter/enc-1", "DiagnosticReport/dr-1"]),
            );
        })
        .await
    );
    let done = attempt!("launch", env.standalone().await);
    let refs: Vec<String> = done
        .session
        .context
        .fhir_context
        .iter()
        .filter_map(|i| i.reference.clone())
        .collect();
    ensure!(
        refs == ["Encounter/enc-1", "DiagnosticReport/dr-1"],
        "the 2.0-style fhirContext became {refs:?}"
    );
    Status::Pass
}

/// C-E25.
pub(crate) async fn c_e25(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start_editing_tokens(&h, Kind::Public, "launch/patient patient/*.rs", |m| {
            if let Some(serde_json::Value::String(s)) = m.get_mut("scope") {
                *s = s.replace("patient/*.rs", "patient/*.read");
            }
        })
        .await
    );
    let done = attempt!("launch", env.standalone().await);
    let echoed = env
        .grants("authorization_code")
        .first()
        .and_then(|e| e.response_json())
        .and_then(|v| v["scope"].as_str().map(str::to_owned))
        .unwrap_or_default();
    ensure!(
        echoed.contains("patient/*.read"),
        "setup: the granted scope is {echoed:?}"
    );
    ensure!(
        done.scopes.is_complete(),
        "patient/*.read was not recognised as granting patient/*.rs (dropped {}, narrowed {})",
        done.scopes.dropped,
        done.scopes.narrowed
    );
    Status::Pass
}
