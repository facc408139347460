//! Vendor profiles: the Epic-like and Cerner-like sandboxes, driven only
//! through what a client discovers (smart-configuration, OpenID
//! configuration), never through the generic paths.

use std::collections::HashMap;

use serde_json::Value;
use smart_jose::{Algorithm, Validation};
use smart_sandbox::{
    ClientAuth, ClientRegistration, DEMO_REDIRECT_URI, DEMO_SECRET, LaunchContextRequest, Sandbox,
    SandboxConfig, SandboxError, VendorProfile,
};

use crate::common::*;

const CERNER_TENANT: &str = "ec2458f2-1e24-41c8-b71b-0e701af7583d";
const QUALIFIED: &str = "http://smarthealthit.org/FHIR/scopes/";

async fn start_profile(profile: VendorProfile) -> Sandbox {
    start_with(SandboxConfig {
        profile,
        ..SandboxConfig::default()
    })
    .await
}

async fn epic() -> Sandbox {
    start_profile(VendorProfile::builtin("epic").unwrap()).await
}

async fn cerner() -> Sandbox {
    start_profile(VendorProfile::builtin("cerner").unwrap()).await
}

async fn get(url: &str) -> reqwest::Response {
    http().get(url).send().await.expect("request")
}

async fn json_at(url: &str) -> Value {
    let resp = get(url).await;
    assert_eq!(resp.status(), 200, "GET {url}");
    resp.json().await.unwrap()
}

async fn smart_configuration(sb: &Sandbox) -> Value {
    json_at(&format!(
        "{}/.well-known/smart-configuration",
        sb.fhir_base()
    ))
    .await
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// The discovered endpoints: (authorize, token).
async fn endpoints(sb: &Sandbox) -> (String, String) {
    let doc = smart_configuration(sb).await;
    (
        doc["authorization_endpoint"].as_str().unwrap().to_owned(),
        doc["token_endpoint"].as_str().unwrap().to_owned(),
    )
}

async fn authorize_get(sb: &Sandbox, params: &[(String, String)]) -> reqwest::Response {
    let (authorize, _) = endpoints(sb).await;
    http().get(authorize).query(params).send().await.unwrap()
}

async fn authorize_post(sb: &Sandbox, params: &[(String, String)]) -> reqwest::Response {
    let (authorize, _) = endpoints(sb).await;
    http().post(authorize).form(params).send().await.unwrap()
}

/// The query of a redirect to the demo redirect URI.
fn callback(resp: &reqwest::Response) -> HashMap<String, String> {
    redirect_params(resp)
}

async fn html_page_without_redirect(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none(), "redirected");
    assert!(header(&resp, "content-type").starts_with("text/html"));
    resp.text().await.unwrap()
}

/// A token request at the discovered token endpoint (`demo-confidential`
/// authenticates with Basic, other clients send `client_id`).
async fn token_post(sb: &Sandbox, client_id: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let (_, token) = endpoints(sb).await;
    let mut form = form.to_vec();
    let mut req = http().post(token);
    if client_id == CONFIDENTIAL {
        req = req.header("authorization", basic(CONFIDENTIAL, DEMO_SECRET));
    } else {
        form.push(("client_id", client_id));
    }
    req.form(&form).send().await.unwrap()
}

async fn exchange_at(sb: &Sandbox, client_id: &str, code: &str, p: &Pkce) -> Value {
    let resp = token_post(
        sb,
        client_id,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// A standalone launch (GET) and code exchange through discovery.
async fn standalone(sb: &Sandbox, client_id: &str, scope: &str) -> Value {
    let p = pkce();
    let resp = authorize_get(sb, &auth_params(sb, client_id, scope, &p)).await;
    let q = callback(&resp);
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {q:?}"));
    exchange_at(sb, client_id, code, &p).await
}

async fn refresh_at(sb: &Sandbox, client_id: &str, refresh_token: &str) -> reqwest::Response {
    token_post(
        sb,
        client_id,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

fn access(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

// ---------------------------------------------------------------------------
// URL shapes and discovery

#[tokio::test]
async fn epic_urls_and_discovery() {
    let sb = epic().await;
    let o = origin(&sb);
    assert_eq!(sb.profile().name(), "epic");
    assert_eq!(
        sb.fhir_base(),
        format!("{o}/interconnect-fhir-oauth/api/FHIR/R4")
    );
    let doc = smart_configuration(&sb).await;
    let issuer = format!("{o}/interconnect-fhir-oauth/oauth2");
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(doc["token_endpoint"], sb.token_url());
    assert_eq!(
        strings(&doc["scopes_supported"]),
        [
            "epic.scanning.dmsusername",
            "fhirUser",
            "launch",
            "openid",
            "profile"
        ]
    );
    assert!(strings(&doc["token_endpoint_auth_methods_supported"]).contains(&"client_secret_post"));
    assert!(strings(&doc["capabilities"]).contains(&"authorize-post"));

    // OpenID configuration under the issuer and at the FHIR base (§1.1).
    let at_issuer = json_at(&format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(at_issuer["issuer"], issuer);
    assert_eq!(at_issuer["jwks_uri"], doc["jwks_uri"]);
    let at_base = json_at(&format!(
        "{}/.well-known/openid-configuration",
        sb.fhir_base()
    ))
    .await;
    assert_eq!(at_base, at_issuer);

    // The legacy oauth-uris point at the same endpoints.
    let metadata = json_at(&format!("{}/metadata", sb.fhir_base())).await;
    let uris = &metadata["rest"][0]["security"]["extension"][0]["extension"];
    assert_eq!(uris[1]["valueUri"], doc["token_endpoint"]);

    // The generic paths are gone.
    assert_eq!(get(&format!("{o}/fhir/metadata")).await.status(), 404);
    assert_eq!(get(&format!("{o}/auth/jwks")).await.status(), 404);
}

#[tokio::test]
async fn cerner_urls_and_discovery() {
    let sb = cerner().await;
    let o = origin(&sb);
    assert_eq!(sb.fhir_base(), format!("{o}/r4/{CERNER_TENANT}"));
    let doc = smart_configuration(&sb).await;
    let issuer = format!("{o}/tenants/{CERNER_TENANT}");
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{issuer}/protocols/oauth2/profiles/smart-v1/personas/provider/authorize")
    );
    assert_eq!(
        doc["token_endpoint"],
        format!("{issuer}/hosts/fhir-ehr.example/protocols/oauth2/profiles/smart-v1/token")
    );
    let grants = strings(&doc["grant_types_supported"]);
    assert_eq!(grants, ["authorization_code", "client_credentials"]);
    assert!(
        !strings(&doc["token_endpoint_auth_methods_supported"]).contains(&"client_secret_post")
    );
    let caps = strings(&doc["capabilities"]);
    assert!(caps.contains(&"launch-standalone"));
    assert!(!caps.contains(&"context-standalone-patient"));
    let scopes = strings(&doc["scopes_supported"]);
    assert!(scopes.contains(&"user/Observation.rs"));
    assert!(!scopes.iter().any(|s| s.contains('*')));

    // The id_token issuer differs from the smart-configuration issuer, and
    // its OpenID configuration lives under it (trailing slash kept).
    let id_issuer = sb.id_token_issuer();
    assert_eq!(
        id_issuer,
        format!("{o}/tenants/{CERNER_TENANT}/oidc/idsps/a1b2c3/")
    );
    assert_ne!(id_issuer, issuer);
    let oidc = json_at(&format!(
        "{}/.well-known/openid-configuration",
        id_issuer.trim_end_matches('/')
    ))
    .await;
    assert_eq!(oidc["issuer"], id_issuer);
    assert_eq!(oidc["jwks_uri"], doc["jwks_uri"]);
    let at_base = get(&format!(
        "{}/.well-known/openid-configuration",
        sb.fhir_base()
    ))
    .await;
    assert_eq!(at_base.status(), 404);

    // Another tenant's base: 403, plain text.
    let resp = get(&format!(
        "{o}/r4/00000000-0000-0000-0000-000000000000/Patient/pat-1"
    ))
    .await;
    assert_eq!(resp.status(), 403);
    assert!(header(&resp, "content-type").starts_with("text/plain"));
    assert_eq!(resp.text().await.unwrap(), "Tenant not valid or accessible");
}

// ---------------------------------------------------------------------------
// Authorization endpoint

#[tokio::test]
async fn epic_accepts_post_only_for_ehr_launch() {
    let sb = epic().await;
    let p = pkce();
    let standalone_params = auth_params(&sb, PUBLIC, "launch/patient openid fhirUser", &p);

    // Standalone POST: an HTML page, no redirect.
    let page = html_page_without_redirect(authorize_post(&sb, &standalone_params).await).await;
    assert!(page.contains("only for an EHR launch"), "{page}");

    // Standalone GET works.
    let q = callback(&authorize_get(&sb, &standalone_params).await);
    assert!(q.contains_key("code"), "{q:?}");

    // EHR-launch POST works.
    let launch = sb
        .issue_launch(
            CONFIDENTIAL,
            LaunchContextRequest {
                patient: Some("pat-2".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let mut params = auth_params(&sb, CONFIDENTIAL, "launch openid fhirUser", &p);
    set(&mut params, "launch", Some(&launch));
    let q = callback(&authorize_post(&sb, &params).await);
    assert!(q.contains_key("code"), "{q:?}");

    // Other errors are an HTML page too (no redirect with error=).
    let mut wrong_aud = standalone_params.clone();
    set(
        &mut wrong_aud,
        "aud",
        Some(&format!("{}/fhir", origin(&sb))),
    );
    let page = html_page_without_redirect(authorize_get(&sb, &wrong_aud).await).await;
    assert!(page.contains("aud"), "{page}");
}

/// Oracle Health documents wildcard scopes as unsupported, and a 2026 live
/// probe saw them dropped from a successful grant: the code flow succeeds and
/// the token's scope lacks the wildcard.
#[tokio::test]
async fn cerner_drops_wildcard_scopes_silently() {
    let sb = cerner().await;
    let body = standalone(
        &sb,
        CONFIDENTIAL,
        "openid fhirUser patient/*.read user/Patient.rs",
    )
    .await;
    let scope = body["scope"].as_str().unwrap();
    assert!(!scope.contains('*'), "{scope}");
    assert!(scope.split(' ').any(|s| s == "user/Patient.rs"), "{scope}");
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
}

/// The documented `error_uri` shape: no `/tenants/` segment, a reason slug
/// (not the OAuth code) before `/instances/`, and `client=` and `tenant=`.
#[tokio::test]
async fn cerner_errors_carry_the_documented_error_uri() {
    let sb = cerner().await;
    let p = pkce();
    // An authorization error that redirects: a scope the client cannot have.
    let q = callback(&authorize_get(&sb, &auth_params(&sb, PUBLIC, "system/Patient.rs", &p)).await);
    assert!(q.contains_key("error"), "{q:?}");
    let uri = url::Url::parse(&q["error_uri"]).expect("absolute error_uri");
    assert!(
        uri.path()
            .starts_with("/errors/urn%3Acerner%3Aerror%3Aauthorization-server%3Aoauth2%3A"),
        "{uri}"
    );
    assert!(uri.path().contains("/instances/"), "{uri}");
    let query: HashMap<String, String> = uri.query_pairs().into_owned().collect();
    assert_eq!(query["persona"], "provider");
    assert_eq!(query["client"], PUBLIC);
    assert_eq!(query["tenant"], CERNER_TENANT);
    assert_eq!(q["state"], "st-123");

    let q = callback(
        &authorize_get(
            &sb,
            &auth_params(&sb, PUBLIC, "openid fhirUser user/Patient.rs", &p),
        )
        .await,
    );
    assert!(q.contains_key("code"), "{q:?}");
    assert!(!q.contains_key("error_uri"));

    // A bad code: the documented reason slug, and the client named.
    let resp = token_post(
        &sb,
        PUBLIC,
        &[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let uri = url::Url::parse(body["error_uri"].as_str().unwrap()).unwrap();
    assert!(
        uri.path()
            .contains("oauth2%3Atoken%3Acode-invalid-or-expired/instances/"),
        "{uri}"
    );
    assert!(!uri.path().contains("/tenants/"), "{uri}");
    let query: HashMap<String, String> = uri.query_pairs().into_owned().collect();
    assert_eq!(query["client"], PUBLIC);
}

/// Oracle Health's system accounts: `client_credentials` with HTTP Basic, as
/// well as `private_key_jwt`. The generic profile still refuses Basic.
#[tokio::test]
async fn cerner_backend_services_accept_a_basic_system_account() {
    let system_account = |sb: &Sandbox| {
        sb.register_client(ClientRegistration {
            client_id: "system-account".into(),
            auth: ClientAuth::ClientSecretBasic {
                secret: "system-secret".into(),
            },
            redirect_uris: vec![],
            launch_uri: None,
            scopes: "system/Patient.rs system/Observation.rs".into(),
            grant_types: vec!["client_credentials".into()],
            context: Default::default(),
        });
    };
    async fn request(sb: &Sandbox) -> reqwest::Response {
        let (_, url) = endpoints(sb).await;
        http()
            .post(url)
            .header("authorization", basic("system-account", "system-secret"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "system/Patient.rs"),
            ])
            .send()
            .await
            .unwrap()
    }
    let sb = cerner().await;
    system_account(&sb);
    let resp = request(&sb).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "system/Patient.rs");
    let token = body["access_token"].as_str().unwrap();
    get_json(&sb, "Patient/pat-1", token, 200).await;

    let generic = start().await;
    system_account(&generic);
    let resp = request(&generic).await;
    let d = oauth_error(resp, 400, "unauthorized_client").await;
    assert!(d.contains("private_key_jwt"), "{d}");
}

// ---------------------------------------------------------------------------
// Token responses

#[tokio::test]
async fn epic_refresh_tokens_and_scope_echo() {
    let sb = epic().await;
    let scope = "launch/patient openid fhirUser offline_access patient/Observation.rs";

    // A public client never gets a refresh token (row 25).
    let public = standalone(&sb, PUBLIC, scope).await;
    assert!(public.get("refresh_token").is_none(), "{public}");
    assert_eq!(public["token_type"], "bearer");
    assert_eq!(public["expires_in"], 3600);

    // ... and its granted scope does not claim offline access it was not given.
    let public_echo: Vec<&str> = public["scope"].as_str().unwrap().split(' ').collect();
    assert!(!public_echo.contains(&"offline_access"), "{public_echo:?}");

    // A confidential one does; the scope comes from the registration and
    // echoes offline_access with the refresh token (rows 18, 25; Epic's
    // tutorial shows a real R4 response ending `offline_access openid`).
    let body = standalone(&sb, CONFIDENTIAL, scope).await;
    let refresh_token = body["refresh_token"].as_str().expect("refresh_token");
    let echoed: Vec<&str> = body["scope"].as_str().unwrap().split(' ').collect();
    assert!(echoed.contains(&"offline_access"), "{echoed:?}");
    for s in [
        "launch/patient",
        "openid",
        "fhirUser",
        "patient/*.rs",
        "user/*.rs",
    ] {
        assert!(echoed.contains(&s), "{s} missing from {echoed:?}");
    }
    assert!(!echoed.contains(&"patient/Observation.rs"));
    assert_eq!(body["patient"], "pat-1");
    assert_eq!(body["__epic.dstu2.patient"].as_str().unwrap().len(), 26);
    assert_eq!(body["state"], "st-123");

    // Refreshing returns no new refresh token; the original keeps working.
    for _ in 0..2 {
        let resp = refresh_at(&sb, CONFIDENTIAL, refresh_token).await;
        assert_eq!(resp.status(), 200);
        let refreshed: Value = resp.json().await.unwrap();
        assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
        assert!(refreshed.get("state").is_none());
        assert_eq!(refreshed["scope"], body["scope"]);
    }

    // client_secret_post is accepted (row 19).
    let (_, token) = endpoints(&sb).await;
    let resp = http()
        .post(token)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CONFIDENTIAL),
            ("client_secret", DEMO_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn epic_ehr_launch_context() {
    let sb = epic().await;
    let launch = sb
        .issue_launch(
            CONFIDENTIAL,
            LaunchContextRequest {
                patient: Some("pat-2".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let p = pkce();
    let mut params = auth_params(&sb, CONFIDENTIAL, "launch openid fhirUser", &p);
    set(&mut params, "launch", Some(&launch));
    let q = callback(&authorize_post(&sb, &params).await);
    let body = exchange_at(&sb, CONFIDENTIAL, &q["code"], &p).await;
    assert_eq!(body["patient"], "pat-2");
    assert_eq!(body["need_patient_banner"], "true");
    let dstu2 = body["__epic.dstu2.patient"].as_str().unwrap();
    assert!(dstu2.starts_with('T') && dstu2.ends_with('B') && dstu2 != "pat-2");
    assert!(body["location"].is_string());
    assert!(body["loginDepartment"].is_string());
    assert_eq!(body["state"], "st-123");
}

#[tokio::test]
async fn cerner_token_response_and_refresh_throttling() {
    let sb = cerner().await;
    let body = standalone(
        &sb,
        PUBLIC,
        "openid fhirUser online_access user/Patient.rs user/Observation.rs",
    )
    .await;
    assert_eq!(body["expires_in"], 570);
    assert_eq!(body["token_type"], "Bearer");
    // Short form by default, as in every documented response.
    let scope = body["scope"].as_str().unwrap();
    assert!(!scope.contains(QUALIFIED), "{scope}");
    assert!(
        scope.split(' ').any(|s| s == "user/Observation.rs"),
        "{scope}"
    );
    assert_eq!(body["tenant"], CERNER_TENANT);
    assert_eq!(body["user"], "prac-1");
    assert!(body["username"].is_string());
    assert!(body["active_ttl"].is_u64());

    // The first refresh after the exchange is fine; no new refresh token.
    let refresh_token = body["refresh_token"].as_str().unwrap();
    let resp = refresh_at(&sb, PUBLIC, refresh_token).await;
    assert_eq!(resp.status(), 200);
    let refreshed: Value = resp.json().await.unwrap();
    assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");

    // A second one within a minute is throttled (row 27).
    let resp = refresh_at(&sb, PUBLIC, refresh_token).await;
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&resp, "cache-control"), "no-store");
    let error: Value = resp.json().await.unwrap();
    assert_eq!(error["error"], "temporarily_unavailable");
    assert_eq!(
        error["error_description"],
        "refresh throttled: at most one refresh per minute"
    );
    assert!(error["error_uri"].is_string());
}

/// The qualified form (the authorization specification allows it) is an
/// option on top of the cerner profile.
#[tokio::test]
async fn cerner_qualified_scope_echo_is_an_option() {
    let profile = VendorProfile::from_toml_str(&format!(
        "extends = \"cerner\"\nname = \"cerner-qualified\"\nscope_echo = \"qualified\"\nqualified_scope_prefix = \"{QUALIFIED}\"\n"
    ))
    .unwrap();
    let sb = start_profile(profile).await;
    let body = standalone(&sb, PUBLIC, "openid fhirUser user/Observation.rs").await;
    let scope = body["scope"].as_str().unwrap();
    for s in scope.split(' ') {
        assert!(s.starts_with(QUALIFIED), "{s}");
    }
    assert!(scope.contains(&format!("{QUALIFIED}user/Observation.rs")));
}

#[tokio::test]
async fn cerner_refresh_tokens_never_rotate() {
    // A one-second interval keeps the test short.
    let profile = VendorProfile::from_toml_str(
        "extends = \"cerner\"\nname = \"quick-cerner\"\nrefresh_min_interval_secs = 1\n",
    )
    .unwrap();
    let sb = start_profile(profile).await;
    let body = standalone(&sb, CONFIDENTIAL, "openid offline_access user/Patient.rs").await;
    let original = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh_at(&sb, CONFIDENTIAL, original).await.status(), 200);
    let resp = refresh_at(&sb, CONFIDENTIAL, original).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "1");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let resp = refresh_at(&sb, CONFIDENTIAL, original).await;
    assert_eq!(resp.status(), 200);
    let refreshed: Value = resp.json().await.unwrap();
    assert!(refreshed.get("refresh_token").is_none());
    assert!(refreshed["access_token"].is_string());
}

// ---------------------------------------------------------------------------
// OpenID Connect

/// Gets an id_token and verifies it against the JWKS named by the OpenID
/// configuration under the token's own `iss`; returns the claims.
async fn verified_id_token(sb: &Sandbox, scope: &str) -> smart_jose::VerifiedJwt {
    let body = standalone(sb, CONFIDENTIAL, scope).await;
    let id_token = body["id_token"].as_str().expect("id_token");
    let (_, claims) = jwt_parts(id_token);
    let iss = claims["iss"].as_str().unwrap();
    let config = json_at(&format!(
        "{}/.well-known/openid-configuration",
        iss.trim_end_matches('/')
    ))
    .await;
    assert_eq!(config["issuer"], iss);
    let jwks: smart_jose::Jwks =
        serde_json::from_value(json_at(config["jwks_uri"].as_str().unwrap()).await).unwrap();
    let validation = Validation::id_token(iss, CONFIDENTIAL, &[Algorithm::RS256]);
    smart_jose::verify(id_token, &jwks, &validation).expect("id_token verifies")
}

#[tokio::test]
async fn id_tokens_carry_each_profiles_issuer() {
    let sb = epic().await;
    let jwt = verified_id_token(&sb, "openid fhirUser").await;
    let iss = format!("{}/interconnect-fhir-oauth/oauth2", origin(&sb));
    assert_eq!(jwt.claim_str("iss"), Some(iss.as_str()));
    assert_ne!(jwt.claim_str("iss"), Some(sb.fhir_base().as_str()));
    assert_eq!(
        jwt.claim_str("fhirUser"),
        Some(format!("{}/Practitioner/prac-1", sb.fhir_base()).as_str())
    );
    let claims = &jwt.claims;
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 300);

    let sb = cerner().await;
    let jwt = verified_id_token(&sb, "openid fhirUser profile user/Patient.rs").await;
    assert_eq!(jwt.claim_str("iss"), Some(sb.id_token_issuer().as_str()));
    assert!(
        jwt.claim_str("iss")
            .unwrap()
            .ends_with("/oidc/idsps/a1b2c3/")
    );
    assert!(jwt.claim_str("profile").is_some() && jwt.claim_str("fhirUser").is_some());
    let claims = &jwt.claims;
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 600);
}

// ---------------------------------------------------------------------------
// FHIR

fn outcome_entries(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "outcome")
        .collect()
}

#[tokio::test]
async fn epic_search_bundles_and_required_parameters() {
    let sb = epic().await;
    let token = standalone(&sb, CONFIDENTIAL, "openid user/Observation.rs").await;
    let token = access(&token);

    // Epic's error table: 4101 is a warning, "Resource request returns no
    // results", on a search that matched nothing.
    let empty = get_json(
        &sb,
        "Observation?patient=pat-1&code=no-such-code",
        token,
        200,
    )
    .await;
    assert!(matches(&empty).is_empty(), "{empty}");
    let outcomes = outcome_entries(&empty);
    assert_eq!(outcomes.len(), 1, "{empty}");
    let issue = &outcomes[0]["resource"]["issue"][0];
    assert_eq!(issue["severity"], "warning");
    assert_eq!(issue["details"]["coding"][0]["code"], "4101");
    assert_eq!(issue["diagnostics"], "Resource request returns no results");

    // A search with matches carries no 4101.
    let bundle = get_json(&sb, "Observation?patient=pat-1&_count=5", token, 200).await;
    assert!(outcome_entries(&bundle).is_empty(), "{bundle}");
    assert_eq!(matches(&bundle).len(), 5);
    assert!(
        bundle["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/Observation/", sb.fhir_base()))
    );
    // The next link stays under the Epic base; a later page with matches
    // has no 4101 either.
    let next = link(&bundle, "next").unwrap();
    assert!(next.starts_with(&format!("{}?", sb.fhir_base())), "{next}");
    let page: Value = get_url(&next, token).await.json().await.unwrap();
    assert!(outcome_entries(&page).is_empty(), "{page}");

    // No patient parameter: 400 OperationOutcome (Epic 4111).
    let resp = read(&sb, "Observation?code=8867-4", Some(token)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "content-type"), "application/fhir+json");
    let outcome: Value = resp.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "required");
    assert_eq!(outcome["issue"][0]["details"]["coding"][0]["code"], "4111");
    // `subject:Patient` counts as the parameter.
    get_json(
        &sb,
        "Observation?subject:Patient=pat-1&_count=1",
        token,
        200,
    )
    .await;
}

#[tokio::test]
async fn cerner_missing_patient_is_plain_text() {
    let sb = cerner().await;
    let token = standalone(&sb, CONFIDENTIAL, "user/Observation.rs user/Patient.rs").await;
    let token = access(&token);
    let resp = read(&sb, "Observation?code=8867-4", Some(token)).await;
    assert_eq!(resp.status(), 400);
    assert!(header(&resp, "content-type").starts_with("text/plain"));
    assert_eq!(
        resp.text().await.unwrap(),
        "no supported search parameters provided"
    );
    let bundle = get_json(&sb, "Observation?patient=pat-1&_count=2", token, 200).await;
    assert!(outcome_entries(&bundle).is_empty());
    assert_eq!(matches(&bundle).len(), 2);
    // Patient searches need no patient parameter.
    get_json(&sb, "Patient?_count=1", token, 200).await;
}

#[tokio::test]
async fn epic_backend_services_are_granted_from_the_registration() {
    let sb = epic().await;
    let key = register_backend(&sb, "epic-backend");
    // The assertion's aud is the profile's token URL; no scope parameter.
    let url = sb.token_url();
    assert!(url.ends_with("/interconnect-fhir-oauth/oauth2/token"));
    let assertion = smart_jose::client_assertion(
        &key,
        &smart_jose::ClientAssertion::new("epic-backend", &url),
        now(),
    )
    .unwrap();
    let resp = http()
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], BACKEND_SCOPES);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
}

// ---------------------------------------------------------------------------
// Configuration

#[test]
fn clients_file_selects_a_profile() {
    let config =
        SandboxConfig::from_toml_str("include_demo_clients = true\nprofile = \"cerner\"\n")
            .unwrap();
    assert_eq!(config.profile.name(), "cerner");
    assert_eq!(
        SandboxConfig::from_toml_str("include_demo_clients = true\n")
            .unwrap()
            .profile,
        VendorProfile::default()
    );
    match SandboxConfig::from_toml_str("include_demo_clients = true\nprofile = \"allscripts\"\n") {
        Err(SandboxError::Config(m)) => {
            assert!(
                m.contains("generic, epic, cerner") && !m.contains('\n'),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    match VendorProfile::builtin("Epic") {
        Err(SandboxError::Config(m)) => assert!(m.contains("generic, epic, cerner"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn clients_file_may_name_a_profile_file() {
    let dir = std::env::temp_dir().join(format!("smart-sandbox-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("vendor.toml"),
        "extends = \"cerner\"\nname = \"cerner-patient\"\nauthorize_path = \"/tenants/{tenant}/protocols/oauth2/profiles/smart-v1/personas/patient/authorize\"\n",
    )
    .unwrap();
    let clients = dir.join("clients.toml");
    std::fs::write(
        &clients,
        "include_demo_clients = true\nprofile_file = \"vendor.toml\"\n",
    )
    .unwrap();
    let config = SandboxConfig::from_toml_file(&clients).unwrap();
    assert_eq!(config.profile.name(), "cerner-patient");
    assert!(config.profile.authorize_path.contains("personas/patient"));
    assert_eq!(config.profile.refresh_min_interval_secs, 60);

    std::fs::write(
        dir.join("bad.toml"),
        "extends = \"cerner\"\nname = \"x\"\ntoken_typ = \"bearer\"\n",
    )
    .unwrap();
    std::fs::write(
        &clients,
        "include_demo_clients = true\nprofile_file = \"bad.toml\"\n",
    )
    .unwrap();
    match SandboxConfig::from_toml_file(&clients) {
        Err(SandboxError::Config(m)) => {
            assert!(
                m.contains("bad.toml") && m.contains("token_typ") && !m.contains('\n'),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn generic_is_the_default() {
    let sb = start().await;
    assert_eq!(sb.profile().name(), "generic");
    assert_eq!(sb.fhir_base(), format!("{}/fhir", origin(&sb)));
    assert_eq!(sb.token_url(), format!("{}/auth/token", origin(&sb)));
    assert_eq!(
        sb.authorize_url(),
        format!("{}/auth/authorize", origin(&sb))
    );
    assert_eq!(sb.id_token_issuer(), sb.fhir_base());
}
