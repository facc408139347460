//! Helpers shared by the HTTP tests: a client that never follows redirects,
//! PKCE pairs, and shortcuts through the authorization-code flow.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use smart_jose::{Algorithm, ClientAssertion, Jwks, JwtHeader, PrivateKey, client_assertion};
use smart_sandbox::{
    ClientAuth, ClientRegistration, DEMO_REDIRECT_URI, DEMO_SECRET, LaunchDefaults, Sandbox,
    SandboxConfig,
};

pub const PUBLIC: &str = "demo-public";
pub const CONFIDENTIAL: &str = "demo-confidential";

pub async fn start() -> Sandbox {
    start_with(SandboxConfig::default()).await
}

pub async fn start_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config).await.expect("sandbox starts")
}

/// A client that never follows redirects. Building a reqwest client loads
/// the platform's root certificates (tens of milliseconds in a debug build),
/// so one client is shared; connection pooling is off because every test
/// runs its own runtime and its own sandbox.
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()
                .expect("client")
        })
        .clone()
}

pub fn origin(sb: &Sandbox) -> String {
    format!("http://{}", sb.addr())
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// A complete, valid standalone authorization request for `client_id`.
pub fn auth_params(
    sb: &Sandbox,
    client_id: &str,
    scope: &str,
    pkce: &Pkce,
) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", DEMO_REDIRECT_URI),
        ("scope", scope),
        ("state", "st-123"),
        ("aud", &sb.fhir_base()),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub fn set(params: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    params.retain(|(k, _)| k != key);
    if let Some(v) = value {
        params.push((key.to_owned(), v.to_owned()));
    }
}

pub async fn authorize(sb: &Sandbox, params: &[(String, String)]) -> reqwest::Response {
    http()
        .get(format!("{}/auth/authorize", origin(sb)))
        .query(params)
        .send()
        .await
        .expect("authorize request")
}

/// The query parameters of a 302's Location, after checking it points at
/// the demo redirect URI.
pub fn redirect_params(resp: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(resp.status(), 302, "expected a redirect");
    let location = resp
        .headers()
        .get("location")
        .expect("Location")
        .to_str()
        .expect("ascii");
    let url = url::Url::parse(location).expect("absolute Location");
    assert!(
        location.starts_with(&format!("{DEMO_REDIRECT_URI}?")),
        "redirected to {location}"
    );
    url.query_pairs().into_owned().collect()
}

/// Runs the authorize step and returns the code.
pub async fn code(sb: &Sandbox, client_id: &str, scope: &str, pkce: &Pkce) -> String {
    let resp = authorize(sb, &auth_params(sb, client_id, scope, pkce)).await;
    let params = redirect_params(&resp);
    assert_eq!(params.get("state").map(String::as_str), Some("st-123"));
    params
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {params:?}"))
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// POSTs a token request; confidential demo client uses Basic, the public
/// one sends client_id.
pub async fn token_request(
    sb: &Sandbox,
    client_id: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http().post(format!("{}/auth/token", origin(sb)));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    if client_id == CONFIDENTIAL {
        req = req.header("authorization", basic(CONFIDENTIAL, DEMO_SECRET));
    } else {
        form.push(("client_id", client_id));
    }
    req.form(&form).send().await.expect("token request")
}

pub async fn exchange(sb: &Sandbox, client_id: &str, code: &str, pkce: &Pkce) -> reqwest::Response {
    token_request(
        sb,
        client_id,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
}

/// Authorize + exchange, returning the token JSON.
pub async fn tokens(sb: &Sandbox, client_id: &str, scope: &str) -> Value {
    let p = pkce();
    let c = code(sb, client_id, scope, &p).await;
    let resp = exchange(sb, client_id, &c, &p).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// Asserts an RFC 6749 §5.2 error and returns its description.
pub async fn oauth_error(resp: reqwest::Response, status: u16, error: &str) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(header(&resp, "cache-control"), "no-store");
    assert_eq!(header(&resp, "pragma"), "no-cache");
    let body: Value = resp.json().await.expect("json error body");
    assert_eq!(body["error"], error, "{body}");
    body["error_description"]
        .as_str()
        .expect("error_description")
        .to_owned()
}

pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

pub async fn read(sb: &Sandbox, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = http().get(format!("{}/{path}", sb.fhir_base()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("fhir request")
}

// ---------------------------------------------------------------------------
// Asymmetric clients (private_key_jwt) and Backend Services

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Scopes the test backend clients may be granted.
pub const BACKEND_SCOPES: &str = "system/Patient.rs system/Observation.rs";

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn es384() -> PrivateKey {
    PrivateKey::generate(Algorithm::ES384).unwrap()
}

pub fn token_url(sb: &Sandbox) -> String {
    format!("{}/auth/token", origin(sb))
}

/// `private_key_jwt` with the keys registered by value.
pub fn inline_keys(keys: &[&PrivateKey]) -> ClientAuth {
    ClientAuth::PrivateKeyJwt {
        jwks: Some(Jwks::new(keys.iter().map(|k| k.public_jwk()).collect())),
        jwks_url: None,
    }
}

/// A Backend Services client (client_credentials only).
pub fn backend_client(client_id: &str, auth: ClientAuth) -> ClientRegistration {
    ClientRegistration {
        client_id: client_id.to_owned(),
        auth,
        redirect_uris: Vec::new(),
        launch_uri: None,
        scopes: BACKEND_SCOPES.to_owned(),
        grant_types: vec!["client_credentials".to_owned()],
        context: LaunchDefaults::default(),
    }
}

/// Registers a backend client with one fresh ES384 key; returns the key.
pub fn register_backend(sb: &Sandbox, client_id: &str) -> PrivateKey {
    let key = es384();
    sb.register_client(backend_client(client_id, inline_keys(&[&key])));
    key
}

/// A valid assertion for the sandbox's token endpoint.
pub fn assertion(sb: &Sandbox, client_id: &str, key: &PrivateKey) -> String {
    let url = token_url(sb);
    client_assertion(key, &ClientAssertion::new(client_id, &url), now()).unwrap()
}

/// Claims of a valid assertion, to be tampered with.
pub fn assertion_claims(sb: &Sandbox, client_id: &str) -> Value {
    let now = now();
    serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url(sb),
        "exp": now + 240,
        "iat": now,
        "jti": format!("jti-{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())),
    })
}

/// Signs `claims` with `typ: JWT` (and `jku` if given).
pub fn sign(key: &PrivateKey, claims: &Value, jku: Option<&str>) -> String {
    let header = JwtHeader {
        typ: Some("JWT".into()),
        jku: jku.map(str::to_owned),
    };
    key.sign(&header, claims).unwrap()
}

/// POSTs `form` plus the assertion to `path` (e.g. `/auth/token`).
pub async fn post_with_assertion(
    sb: &Sandbox,
    path: &str,
    assertion: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("client_assertion_type", JWT_BEARER));
    form.push(("client_assertion", assertion));
    http()
        .post(format!("{}{path}", origin(sb)))
        .form(&form)
        .send()
        .await
        .expect("request")
}

/// A client_credentials request with the given assertion.
pub async fn backend_token(
    sb: &Sandbox,
    assertion: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    post_with_assertion(sb, "/auth/token", assertion, &form).await
}

/// Asserts an `invalid_client` (RFC 6749 §5.2) and returns the description:
/// a 401 must carry a `WWW-Authenticate` challenge; without one the answer is
/// a 400 (the client attempted no HTTP authentication).
pub async fn invalid_client(resp: reqwest::Response) -> String {
    let status = if header(&resp, "www-authenticate").is_empty() {
        400
    } else {
        401
    };
    oauth_error(resp, status, "invalid_client").await
}

/// Splits a compact JWS into its decoded header and claims.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = |what: &str| -> Value {
        let part = parts.next().unwrap_or_else(|| panic!("no {what}"));
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    let header = decode("header");
    let claims = decode("claims");
    (header, claims)
}

// ---------------------------------------------------------------------------
// FHIR API

/// A public client allowed to write (the demo clients may only read).
pub const WRITER: &str = "writer-app";

/// Registers [`WRITER`]: public, patient `pat-1` by default, and allowed
/// `patient/*.cruds user/*.cruds`.
pub fn register_writer(sb: &Sandbox) {
    sb.register_client(ClientRegistration {
        client_id: WRITER.to_owned(),
        auth: ClientAuth::Public,
        redirect_uris: vec![DEMO_REDIRECT_URI.to_owned()],
        launch_uri: None,
        scopes: "launch launch/patient offline_access patient/*.cruds user/*.cruds".to_owned(),
        grant_types: vec!["authorization_code".to_owned()],
        context: LaunchDefaults {
            patient: Some("pat-1".to_owned()),
            user: Some("Practitioner/prac-1".to_owned()),
            ..LaunchDefaults::default()
        },
    });
}

/// An access token for `scope` through the authorization-code flow.
pub async fn access_token(sb: &Sandbox, client_id: &str, scope: &str) -> String {
    let body = tokens(sb, client_id, scope).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// A `user/*.rs` token (no patient in context).
pub async fn user_token(sb: &Sandbox) -> String {
    access_token(sb, CONFIDENTIAL, "user/*.rs").await
}

/// A Backend Services token for `scope` (the client may have `system/*.cruds`).
pub async fn system_token(sb: &Sandbox, scope: &str) -> String {
    let key = es384();
    let mut client = backend_client("fhir-backend", inline_keys(&[&key]));
    client.scopes = "system/*.cruds".to_owned();
    sb.register_client(client);
    let resp = backend_token(sb, &assertion(sb, "fhir-backend", &key), Some(scope)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// GETs `{fhir_base}/{path}` and returns the JSON body after checking the
/// status.
pub async fn get_json(sb: &Sandbox, path: &str, token: &str, status: u16) -> Value {
    let resp = read(sb, path, Some(token)).await;
    assert_eq!(resp.status(), status, "GET {path}");
    resp.json().await.expect("json body")
}

/// GETs an absolute URL (a `next` link) with a token.
pub async fn get_url(url: &str, token: &str) -> reqwest::Response {
    http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// Sends a JSON body with `method` to `{fhir_base}/{path}`.
pub async fn send(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let url = if path.is_empty() {
        sb.fhir_base()
    } else {
        format!("{}/{path}", sb.fhir_base())
    };
    let mut req = http().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/fhir+json")
            .body(b.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

/// The `search.mode = match` entries' resources.
pub fn matches(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| &e["resource"])
                .collect()
        })
        .unwrap_or_default()
}

/// The ids of the matches.
pub fn match_ids(bundle: &Value) -> Vec<String> {
    matches(bundle)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The URL of a link relation.
pub fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}

/// Follows `next` from a first page until it is absent; returns every page.
pub async fn all_pages(first: Value, token: &str) -> Vec<Value> {
    let mut pages = vec![first];
    while let Some(next) = link(pages.last().unwrap(), "next") {
        let resp = get_url(&next, token).await;
        assert_eq!(resp.status(), 200, "{next}");
        pages.push(resp.json().await.unwrap());
        assert!(pages.len() < 1000, "paging does not end");
    }
    pages
}

/// `total` of a search.
pub fn total(bundle: &Value) -> u64 {
    bundle["total"].as_u64().expect("total")
}
