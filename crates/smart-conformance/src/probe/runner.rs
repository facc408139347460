//! The probe's state and the requests every check family shares: authorization through the
//! approver, token requests with client authentication, and the observations several checks
//! aggregate (token response headers, `temporarily_unavailable` answers).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use smart_core::http::HttpClient;

use super::approve::{Approver, Authorization};
use super::checks;
use super::wire::{Reply, Wire, excerpt, str_of};
use super::{AppClient, Credential, ProbeTarget};
use crate::model::{CheckDef, CheckResult, Status};

/// The longest `Retry-After` the probe honours before retrying a `temporarily_unavailable`.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(3);

/// A PKCE pair.
#[derive(Debug, Clone)]
pub(crate) struct Pkce {
    pub(crate) verifier: String,
    pub(crate) challenge: String,
}

impl Pkce {
    pub(crate) fn new() -> Pkce {
        let verifier = random_string(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// `bytes` random bytes, base64url.
pub(crate) fn random_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Unix time in seconds.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the discovery step found, for the other families.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoints {
    pub(crate) config: Map<String, Value>,
    pub(crate) authorize: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) introspect: Option<String>,
    pub(crate) capabilities: Vec<String>,
}

impl Endpoints {
    pub(crate) fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// One authorization request's parameters, to be varied by the negative checks.
#[derive(Debug, Clone)]
pub(crate) struct AuthRequest {
    pub(crate) params: Vec<(String, String)>,
}

impl AuthRequest {
    pub(crate) fn set(&mut self, key: &str, value: Option<&str>) {
        self.params.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.params.push((key.to_owned(), v.to_owned()));
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Runner<'a> {
    pub(crate) target: &'a ProbeTarget,
    pub(crate) wire: Wire<'a>,
    http: &'a dyn HttpClient,
    approver: &'a dyn Approver,
    results: HashMap<&'static str, Status>,
    pub(crate) endpoints: Endpoints,
    /// Successful token responses seen, and those without the cache headers.
    pub(crate) token_responses: usize,
    pub(crate) cacheable_token_responses: Vec<String>,
    /// `temporarily_unavailable` answers from the token endpoint.
    pub(crate) unavailable: Vec<String>,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        target: &'a ProbeTarget,
        http: &'a dyn HttpClient,
        approver: &'a dyn Approver,
    ) -> Self {
        Runner {
            target,
            wire: Wire { http },
            http,
            approver,
            results: HashMap::new(),
            endpoints: Endpoints::default(),
            token_responses: 0,
            cacheable_token_responses: Vec::new(),
            unavailable: Vec::new(),
        }
    }

    /// Records a result; a failure is never overwritten by a later pass or skip.
    pub(crate) fn set(&mut self, def: &'static CheckDef, status: Status) {
        match self.results.get(def.id) {
            Some(Status::Fail(_)) => {}
            Some(_) if !matches!(status, Status::Fail(_)) => {}
            _ => {
                self.results.insert(def.id, status);
            }
        }
    }

    /// Records a result only if the check has none yet.
    pub(crate) fn set_if_unset(&mut self, def: &'static CheckDef, status: Status) {
        self.results.entry(def.id).or_insert(status);
    }

    /// Marks every listed check skipped with `why`, unless already decided.
    pub(crate) fn skip_all(&mut self, defs: &[&'static CheckDef], why: &str) {
        for def in defs {
            self.set_if_unset(def, Status::Skipped(why.to_owned()));
        }
    }

    pub(crate) async fn run(&mut self) {
        let discovered = self.discover().await;
        if !discovered {
            return;
        }
        self.recognise_vendor().await;
        self.launch_checks().await;
        self.backend_checks().await;
        self.token_endpoint_summary();
    }

    /// The results in [`checks::ALL`] order; a check the run never reached is skipped.
    pub(crate) fn finish(mut self) -> Vec<CheckResult> {
        let subject = self.target.base().to_owned();
        checks::ALL
            .iter()
            .map(|def| {
                let status = self.results.remove(def.id).unwrap_or_else(|| {
                    Status::Skipped("not reached: an earlier step failed".to_owned())
                });
                CheckResult::new(def, subject.clone(), status)
            })
            .collect()
    }

    /// S-8.3 and S-8.4, from what every token request saw.
    fn token_endpoint_summary(&mut self) {
        if self.token_responses == 0 {
            self.skip_all(&[&checks::S_8_3], "no token response was received");
        } else if self.cacheable_token_responses.is_empty() {
            self.set(&checks::S_8_3, Status::Pass);
        } else {
            let seen = self.cacheable_token_responses.len();
            let first = self.cacheable_token_responses[0].clone();
            self.set(
                &checks::S_8_3,
                Status::Fail(format!(
                    "{seen} of {} token responses lacked them; first: {first}",
                    self.token_responses
                )),
            );
        }
        if self.unavailable.is_empty() {
            if self.token_responses == 0 {
                self.skip_all(&[&checks::S_8_4], "no token response was received");
            } else {
                self.set(&checks::S_8_4, Status::Pass);
            }
        } else {
            let n = self.unavailable.len();
            let first = self.unavailable[0].clone();
            self.set(
                &checks::S_8_4,
                Status::Fail(format!(
                    "{n} token request(s) answered temporarily_unavailable ({first}); the probe retried each once"
                )),
            );
        }
    }

    // ---- Authorization ----

    /// The authorization request a conformant app sends.
    pub(crate) fn auth_request(&self, app: &AppClient, scope: &str, pkce: &Pkce) -> AuthRequest {
        AuthRequest {
            params: vec![
                ("response_type".into(), "code".into()),
                ("client_id".into(), app.client_id.clone()),
                ("redirect_uri".into(), app.redirect_uri.clone()),
                ("scope".into(), scope.to_owned()),
                ("state".into(), random_string(24)),
                ("aud".into(), self.target.base().to_owned()),
                ("code_challenge".into(), pkce.challenge.clone()),
                ("code_challenge_method".into(), "S256".into()),
            ],
        }
    }

    /// Sends an authorization request by GET (or POST) through the approver.
    pub(crate) async fn authorize(
        &self,
        request: &AuthRequest,
        post: bool,
    ) -> Result<Authorization, String> {
        let Some(endpoint) = self.endpoints.authorize.as_deref() else {
            return Err("the configuration has no authorization_endpoint".to_owned());
        };
        let mut url = url::Url::parse(endpoint)
            .map_err(|_| "the authorization_endpoint is not a URL".to_owned())?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(request.params.iter())
            .finish();
        let http_request = if post {
            http::Request::builder()
                .method(http::Method::POST)
                .uri(url.as_str())
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.into_bytes())
        } else {
            url.query_pairs_mut().extend_pairs(request.params.iter());
            http::Request::builder()
                .method(http::Method::GET)
                .uri(url.as_str())
                .body(Vec::new())
        }
        .map_err(|e| format!("cannot build the authorization request: {e}"))?;
        let mut app_uris: Vec<&str> = vec![self.target.app.redirect_uri.as_str()];
        if let Some(other) = &self.target.other_app {
            app_uris.push(other.redirect_uri.as_str());
        }
        if let Some(r) = request.get("redirect_uri") {
            app_uris.push(r);
        }
        self.approver
            .authorize(self.http, http_request, &app_uris)
            .await
    }

    /// A fresh code for `app` with `scope`, or why there is none.
    pub(crate) async fn code(
        &self,
        app: &AppClient,
        scope: &str,
        pkce: &Pkce,
    ) -> Result<String, String> {
        let request = self.auth_request(app, scope, pkce);
        let outcome = self.authorize(&request, false).await?;
        outcome
            .code()
            .map(str::to_owned)
            .ok_or_else(|| outcome.describe())
    }

    // ---- Token endpoint ----

    /// Adds `app`'s client authentication to a token request.
    pub(crate) fn authenticate(
        &self,
        app: &AppClient,
        form: &mut Vec<(String, String)>,
        headers: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        match &app.credential {
            Credential::None => form.push(("client_id".into(), app.client_id.clone())),
            Credential::Secret(secret) => {
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                let id: String = enc(&app.client_id);
                let secret: String = enc(secret);
                headers.push((
                    "authorization".into(),
                    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
                ));
            }
            Credential::Key(key) => {
                let token_url = self.token_url()?;
                let assertion = smart_jose::client_assertion(
                    key,
                    &smart_jose::ClientAssertion::new(&app.client_id, token_url),
                    now(),
                )
                .map_err(|e| format!("cannot sign a client assertion: {e}"))?;
                form.push((
                    "client_assertion_type".into(),
                    super::backend::JWT_BEARER.into(),
                ));
                form.push(("client_assertion".into(), assertion));
            }
        }
        Ok(())
    }

    pub(crate) fn token_url(&self) -> Result<&str, String> {
        self.endpoints
            .token
            .as_deref()
            .ok_or_else(|| "the configuration has no token_endpoint".to_owned())
    }

    /// Posts a token request (authenticated as `app` when given) and records what every token
    /// response must show. A `temporarily_unavailable` answer is recorded and retried once.
    pub(crate) async fn token_request(
        &mut self,
        app: Option<&AppClient>,
        form: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut pairs: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut headers = Vec::new();
        if let Some(app) = app {
            self.authenticate(app, &mut pairs, &mut headers)?;
        }
        self.post_token(pairs, headers).await
    }

    /// Posts a prepared token request; see [`Runner::token_request`].
    pub(crate) async fn post_token(
        &mut self,
        pairs: Vec<(String, String)>,
        headers: Vec<(String, String)>,
    ) -> Result<Reply, String> {
        let url = self.token_url()?.to_owned();
        let mut reply = self.wire.post_form(&url, &pairs, &headers).await?;
        if reply.oauth_error().as_deref() == Some("temporarily_unavailable") {
            self.unavailable.push(reply.describe());
            let wait = reply
                .header("retry-after")
                .trim()
                .parse::<u64>()
                .map_or(Duration::from_secs(1), Duration::from_secs)
                .min(MAX_RETRY_WAIT);
            tokio::time::sleep(wait).await;
            // Sent again as is: the answer came before the request was looked at (a gateway),
            // so an assertion's `jti` was not spent.
            reply = self.wire.post_form(&url, &pairs, &headers).await?;
        }
        if reply.ok() {
            self.token_responses += 1;
            let cache = reply.header("cache-control").to_ascii_lowercase();
            let pragma = reply.header("pragma").to_ascii_lowercase();
            if !cache.contains("no-store") || !pragma.contains("no-cache") {
                let what = format!(
                    "Cache-Control {:?}, Pragma {:?}",
                    excerpt(&cache),
                    excerpt(&pragma)
                );
                self.cacheable_token_responses.push(what);
            }
        }
        Ok(reply)
    }

    /// Exchanges `code` as `app` with `verifier` and the app's redirect URI.
    pub(crate) async fn exchange(
        &mut self,
        app: &AppClient,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<Reply, String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", app.redirect_uri.as_str()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token_request(Some(app), &form).await
    }

    /// A full launch: code plus exchange, returning the token response's JSON.
    pub(crate) async fn launch(
        &mut self,
        app: &AppClient,
        scope: &str,
    ) -> Result<Map<String, Value>, String> {
        let pkce = Pkce::new();
        let code = self.code(app, scope, &pkce).await?;
        let reply = self.exchange(app, &code, Some(&pkce.verifier)).await?;
        if !reply.ok() {
            return Err(format!("the code exchange failed: {}", reply.describe()));
        }
        reply
            .json_object()
            .filter(|m| str_of(m, "access_token").is_some())
            .ok_or_else(|| "the token response has no access_token".to_owned())
    }

    /// `GET {base}/{path}` with an optional bearer token.
    pub(crate) async fn fhir_get(&self, path: &str, token: Option<&str>) -> Result<Reply, String> {
        let url = format!("{}/{}", self.target.base(), path.trim_start_matches('/'));
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("accept", "application/fhir+json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("authorization", a));
        }
        self.wire.get(&url, &headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AppClient, RedirectApprover};

    #[test]
    fn a_failure_is_never_overwritten_and_every_check_is_reported_once() {
        let http = smart_core::http::ReqwestHttpClient::new().expect("client");
        let target = ProbeTarget::new(
            "http://127.0.0.1:9/fhir/",
            AppClient::public("x", "http://127.0.0.1:9/cb"),
        );
        let mut runner = Runner::new(&target, &http, &RedirectApprover);
        runner.set(&checks::S_8_1, Status::Pass);
        runner.set(&checks::S_8_1, Status::Fail("later".into()));
        runner.set(&checks::S_8_1, Status::Pass);
        runner.set(&checks::S_8_2, Status::Skipped("first".into()));
        runner.set(&checks::S_8_2, Status::Pass);
        runner.set_if_unset(&checks::S_8_2, Status::Fail("ignored".into()));
        let results = runner.finish();
        assert_eq!(results.len(), checks::ALL.len());
        let of = |id: &str| &results.iter().find(|r| r.def.id == id).expect("id").status;
        assert_eq!(of("S-8.1"), &Status::Fail("later".into()));
        assert_eq!(of("S-8.2"), &Status::Skipped("first".into()));
        assert!(matches!(of("S-1.1"), Status::Skipped(_)));
        assert!(
            results
                .iter()
                .all(|r| r.subject == "http://127.0.0.1:9/fhir")
        );
    }

    #[test]
    fn pkce_pairs_are_s256_and_fresh() {
        let a = Pkce::new();
        let b = Pkce::new();
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(
            a.challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(a.verifier.as_bytes()))
        );
        assert!((43..=128).contains(&a.verifier.len()));
    }
}
