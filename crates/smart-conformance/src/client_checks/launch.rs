//! Discovery, the authorization request, `state`, PKCE and the code exchange (C-1 … C-9).

use base64::Engine as _;
use sha2::{Digest, Sha256};
use smart_core::ClientRegistration;
use smart_core::SmartClient;
use smart_core::StandaloneLaunch;
use smart_core::http::HttpClient;
use smart_sandbox::DEMO_REDIRECT_URI;

use super::env::{Env, Kind, REG, SCOPES, form_field};
use super::{Harness, attempt, client_check, ensure};
use crate::model::Status;
use crate::recording::{Exchange, RecordingHttpClient};

client_check!(
    C_01,
    "C-1",
    Shall,
    "Nothing is sent to a non-loopback server over plain http",
    "SMART App Launch 2.2 §2.0.5 (TLS)"
);
client_check!(
    C_02_1,
    "C-2.1",
    Shall,
    "Every authorization request carries a `state` of at least 122 bits",
    "SMART App Launch 2.2 app-launch §Obtain authorization code (state); RFC 6749 §10.12"
);
client_check!(
    C_02_2,
    "C-2.2",
    Shall,
    "`state` is new for every launch",
    "SMART App Launch 2.2 app-launch (state, unpredictable per session)"
);
client_check!(
    C_02_3,
    "C-2.3",
    Shall,
    "A redirect's `state` is accepted once: a replayed callback exchanges nothing",
    "SMART App Launch 2.2 app-launch (validate state); RFC 6749 §10.12"
);
client_check!(
    C_04_1,
    "C-4.1",
    Shall,
    "The authorization request carries `code_challenge` with `code_challenge_method=S256`",
    "SMART App Launch 2.2 app-launch (PKCE S256 required); RFC 7636 §4.3"
);
client_check!(
    C_04_2,
    "C-4.2",
    Shall,
    "The code exchange sends the `code_verifier` whose S256 is the challenge",
    "RFC 7636 §4.1, §4.5; SMART App Launch 2.2 app-launch"
);
client_check!(
    C_06,
    "C-6",
    Shall,
    "Discovery is `GET {base}/.well-known/smart-configuration` with `Accept: application/json`",
    "SMART App Launch 2.2 conformance §Using .well-known"
);
client_check!(
    C_07_1,
    "C-7.1",
    Shall,
    "Authorization request: `response_type=code`, registered `client_id` and `redirect_uri`, `scope`, each once",
    "SMART App Launch 2.2 app-launch §Obtain authorization code"
);
client_check!(
    C_07_2,
    "C-7.2",
    Shall,
    "`aud` is the FHIR base URL, byte for byte",
    "SMART App Launch 2.2 app-launch (aud)"
);
client_check!(
    C_07_3,
    "C-7.3",
    Shall,
    "EHR launch: `launch` is the value the EHR issued, and `launch` is in the scope",
    "SMART App Launch 2.2 app-launch §EHR launch"
);
client_check!(
    C_07_4,
    "C-7.4",
    Shall,
    "Standalone launch: no `launch` parameter",
    "SMART App Launch 2.2 app-launch §Standalone launch"
);
client_check!(
    C_08,
    "C-8",
    Should,
    "A large authorization request is sent by POST when the server supports `authorize-post`",
    "SMART App Launch 2.2 app-launch (authorize-post)"
);
client_check!(
    C_09_1,
    "C-9.1",
    Shall,
    "Code exchange: form POST with `grant_type=authorization_code`, the redirect's `code` and the same `redirect_uri`",
    "SMART App Launch 2.2 app-launch §Obtain access token; RFC 6749 §4.1.3"
);
client_check!(
    C_09_2,
    "C-9.2",
    Shall,
    "Public client: the code exchange carries the registered `client_id`",
    "SMART App Launch 2.2 app-launch §Obtain access token; RFC 6749 §4.1.3"
);

/// C-1: a registration for a plain-http, non-loopback server sends nothing.
pub(crate) async fn c_01(h: Harness) -> Status {
    let transport = attempt!(
        "transport",
        smart_core::http::ReqwestHttpClient::new().map_err(|e| e.to_string())
    );
    let rec = RecordingHttpClient::new(std::sync::Arc::new(transport));
    let http = h.wrap(rec.clone() as std::sync::Arc<dyn HttpClient>);
    // `.invalid` never resolves, so even a client that ignored the rule could not reach a host.
    let base = "http://ehr.conformance.invalid/fhir";
    let client = smart_adapters::install(SmartClient::builder())
        .registration(
            REG,
            ClientRegistration::public(base, super::CLIENT_ID, DEMO_REDIRECT_URI)
                .with_adapter("generic"),
        )
        .http(http)
        .build();
    let outcome = match client {
        // Refusing the registration at build time is the earliest refusal.
        Err(_) => return Status::Pass,
        Ok(c) => {
            c.begin_standalone_launch(base, StandaloneLaunch::default())
                .await
        }
    };
    let sent = rec.exchanges();
    ensure!(
        sent.is_empty(),
        "{} request(s) were sent to the plain-http server, first {}",
        sent.len(),
        crate::recording::redact(&sent[0].url)
    );
    ensure!(outcome.is_err(), "the launch began over plain http");
    Status::Pass
}

fn first_authorize(env: &Env) -> Result<Exchange, String> {
    env.authorize_requests()
        .into_iter()
        .next()
        .ok_or_else(|| "no request reached the authorization endpoint".to_owned())
}

/// Whether `s` uses only base64url/unreserved characters.
fn unreserved(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// C-2.1.
pub(crate) async fn c_02_1(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let launched = env.standalone().await;
    let auth = attempt!("authorize", first_authorize(&env));
    ensure!(
        auth.param_count("state") == 1,
        "`state` appears {} times",
        auth.param_count("state")
    );
    let state = auth.param("state").unwrap_or_default();
    // 122 bits need 21 characters of a 64-letter alphabet; fewer kinds of letter need more.
    let alphabet: std::collections::BTreeSet<u8> = state.bytes().collect();
    let bits_per_char: usize = if alphabet.len() > 16 { 6 } else { 4 };
    let bits = state.len().saturating_mul(bits_per_char);
    ensure!(
        bits >= 122,
        "`state` has {} characters (at most about {bits} bits); at least 122 bits are required",
        state.len()
    );
    attempt!("launch", launched);
    Status::Pass
}

/// C-2.2.
pub(crate) async fn c_02_2(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    // Two launches begun and authorized (the state is judged where it is sent).
    for _ in 0..2 {
        let request = attempt!("begin", env.begin().await);
        attempt!("authorize", env.authorize(&request).await);
    }
    let states: Vec<String> = env
        .authorize_requests()
        .iter()
        .filter_map(|e| e.param("state"))
        .collect();
    ensure!(
        states.len() == 2,
        "saw {} states in two launches",
        states.len()
    );
    ensure!(
        states[0] != states[1],
        "both launches sent the same `state`"
    );
    Status::Pass
}

/// C-2.3.
pub(crate) async fn c_02_3(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let request = attempt!("begin", env.begin().await);
    let callback = attempt!("authorize", env.authorize(&request).await);
    attempt!("first completion", env.complete(&callback).await);
    let replay = env.complete(&callback).await;
    ensure!(
        replay.is_err(),
        "the replayed callback completed a second launch"
    );
    let exchanges = env.grants("authorization_code").len();
    ensure!(
        exchanges == 1,
        "{exchanges} code exchanges for one authorization: the replayed callback's code was sent"
    );
    Status::Pass
}

/// C-4.1.
pub(crate) async fn c_04_1(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let _ = env.standalone().await;
    let auth = attempt!("authorize", first_authorize(&env));
    let challenge = auth.param("code_challenge");
    ensure!(
        challenge.is_some(),
        "no `code_challenge` in the authorization request"
    );
    let method = auth.param("code_challenge_method");
    ensure!(
        method.as_deref() == Some("S256"),
        "`code_challenge_method` is {method:?}, expected S256"
    );
    let challenge = challenge.unwrap_or_default();
    ensure!(
        challenge.len() == 43 && unreserved(&challenge),
        "`code_challenge` is not a base64url SHA-256 digest ({} characters)",
        challenge.len()
    );
    Status::Pass
}

/// C-4.2.
pub(crate) async fn c_04_2(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let _ = env.standalone().await;
    let auth = attempt!("authorize", first_authorize(&env));
    let exchange = env.grants("authorization_code");
    ensure!(!exchange.is_empty(), "no code exchange was sent");
    let verifier = form_field(&exchange[0], "code_verifier");
    ensure!(
        verifier.is_some(),
        "the code exchange has no `code_verifier`"
    );
    let verifier = verifier.unwrap_or_default();
    ensure!(
        (43..=128).contains(&verifier.len()) && unreserved(&verifier),
        "`code_verifier` must be 43 to 128 unreserved characters (has {})",
        verifier.len()
    );
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    ensure!(
        auth.param("code_challenge").as_deref() == Some(digest.as_str()),
        "BASE64URL(SHA256(code_verifier)) is not the `code_challenge` of the authorization request"
    );
    Status::Pass
}

/// C-6.
pub(crate) async fn c_06(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let _ = env.begin().await;
    let url = format!("{}/.well-known/smart-configuration", env.base);
    let found = env.rec.exchanges().into_iter().find(|e| e.url == url);
    let Some(e) = found else {
        return Status::Fail(format!("no request to {url}"));
    };
    ensure!(e.method == "GET", "discovery used {}", e.method);
    let accept = e.header("accept").unwrap_or("");
    ensure!(
        accept.contains("application/json"),
        "discovery's Accept header is {accept:?}, expected application/json"
    );
    Status::Pass
}

/// C-7.1.
pub(crate) async fn c_07_1(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let _ = env.standalone().await;
    let auth = attempt!("authorize", first_authorize(&env));
    for name in [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "aud",
    ] {
        let n = auth.param_count(name);
        ensure!(
            n == 1,
            "`{name}` appears {n} times in the authorization request"
        );
    }
    ensure!(
        auth.param("response_type").as_deref() == Some("code"),
        "`response_type` is {:?}",
        auth.param("response_type")
    );
    ensure!(
        auth.param("client_id").as_deref() == Some(super::CLIENT_ID),
        "`client_id` is {:?}, registered {}",
        auth.param("client_id"),
        super::CLIENT_ID
    );
    ensure!(
        auth.param("redirect_uri").as_deref() == Some(DEMO_REDIRECT_URI),
        "`redirect_uri` is {:?}, registered {DEMO_REDIRECT_URI}",
        auth.param("redirect_uri")
    );
    ensure!(
        !auth.param("scope").unwrap_or_default().trim().is_empty(),
        "`scope` is empty"
    );
    Status::Pass
}

/// C-7.2.
pub(crate) async fn c_07_2(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let _ = env.standalone().await;
    let auth = attempt!("authorize", first_authorize(&env));
    let aud = auth.param("aud");
    ensure!(
        aud.as_deref() == Some(env.base.as_str()),
        "`aud` is {aud:?}, the FHIR base is {}",
        env.base
    );
    Status::Pass
}

/// C-7.3.
pub(crate) async fn c_07_3(h: Harness) -> Status {
    let env = attempt!(
        "setup",
        Env::start(&h, Kind::Public, "launch patient/*.rs").await
    );
    let issued = env
        .sandbox
        .issue_launch(
            super::CLIENT_ID,
            smart_sandbox::LaunchContextRequest {
                patient: Some("pat-2".into()),
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string());
    let issued = attempt!("issue launch", issued);
    let request = env
        .client
        .begin_ehr_launch_with(
            &env.base,
            &issued,
            smart_core::EhrLaunch {
                registration: Some(REG.into()),
                ..Default::default()
            },
        )
        .await;
    let request = attempt!("begin EHR launch", request);
    let done = match env.authorize(&request).await {
        Ok(callback) => env.complete(&callback).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let auth = attempt!("authorize", first_authorize(&env));
    ensure!(
        auth.param("launch").as_deref() == Some(issued.as_str()),
        "`launch` is {:?}, the EHR issued {issued:?}",
        auth.param("launch")
    );
    let scope = auth.param("scope").unwrap_or_default();
    ensure!(
        scope.split(' ').any(|s| s == "launch"),
        "the EHR launch's scope lacks `launch`: {scope}"
    );
    let done = attempt!("complete", done);
    ensure!(
        done.session.context.patient.as_deref() == Some("pat-2"),
        "the launch context's patient is {:?}, the EHR launched pat-2",
        done.session.context.patient
    );
    Status::Pass
}

/// C-7.4.
pub(crate) async fn c_07_4(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let _ = env.standalone().await;
    let auth = attempt!("authorize", first_authorize(&env));
    ensure!(
        auth.param("launch").is_none(),
        "a standalone launch sent `launch`"
    );
    Status::Pass
}

/// C-8: the long scope list of the adapter flows makes the URL longer than 2 KB.
pub(crate) async fn c_08(h: Harness) -> Status {
    let scopes = smart_testkit::flows::long_scopes();
    let env = attempt!("setup", Env::start(&h, Kind::Public, &scopes).await);
    attempt!("launch", env.standalone().await);
    let auth = attempt!("authorize", first_authorize(&env));
    ensure!(
        auth.method == "POST",
        "a {}-byte authorization request was sent by {}",
        auth.url.len() + auth.request_body.len(),
        auth.method
    );
    let ctype = auth.header("content-type").unwrap_or("");
    ensure!(
        ctype.starts_with("application/x-www-form-urlencoded"),
        "the POSTed authorization request has Content-Type {ctype:?}"
    );
    Status::Pass
}

/// C-9.1.
pub(crate) async fn c_09_1(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Symmetric, SCOPES).await);
    let request = attempt!("begin", env.begin().await);
    let callback = attempt!("authorize", env.authorize(&request).await);
    let code = callback.get("code").map(str::to_owned);
    let _ = env.complete(&callback).await;
    let auth = attempt!("authorize", first_authorize(&env));
    let exchanges = env.token_requests();
    ensure!(
        exchanges.len() == 1,
        "{} token requests for one launch",
        exchanges.len()
    );
    let e = &exchanges[0];
    ensure!(e.method == "POST", "the code exchange used {}", e.method);
    let ctype = e.header("content-type").unwrap_or("");
    ensure!(
        ctype.starts_with("application/x-www-form-urlencoded"),
        "the code exchange has Content-Type {ctype:?}"
    );
    ensure!(
        form_field(e, "grant_type").as_deref() == Some("authorization_code"),
        "`grant_type` is {:?}",
        form_field(e, "grant_type")
    );
    ensure!(
        form_field(e, "code") == code,
        "the `code` sent is not the one the redirect carried"
    );
    ensure!(
        form_field(e, "redirect_uri") == auth.param("redirect_uri"),
        "`redirect_uri` {:?} differs from the authorization request's {:?}",
        form_field(e, "redirect_uri"),
        auth.param("redirect_uri")
    );
    Status::Pass
}

/// C-9.2.
pub(crate) async fn c_09_2(h: Harness) -> Status {
    let env = attempt!("setup", Env::start(&h, Kind::Public, SCOPES).await);
    let _ = env.standalone().await;
    let exchanges = env.grants("authorization_code");
    ensure!(!exchanges.is_empty(), "no code exchange was sent");
    let id = form_field(&exchanges[0], "client_id");
    ensure!(
        id.as_deref() == Some(super::CLIENT_ID),
        "the public client's code exchange has `client_id` {id:?}, registered {}",
        super::CLIENT_ID
    );
    Status::Pass
}
