//! Each client check must notice when the behaviour it checks is broken. Every test here puts a
//! tampering transport between the real client and the recording (so the sandbox and the check
//! see the tampered request, exactly as a buggy client would send it) and asserts that the check
//! reports a failure, and a failure about the broken behaviour.
//!
//! That the same checks pass without tampering is shown by `every_client_check_passes_untampered`
//! below (and by `cargo xtask conformance`).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use smart_conformance::client_checks::{self, CLIENT_ID, CLIENT_SECRET, Harness};
use smart_conformance::model::Status;
use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse};

type Pairs = Vec<(String, String)>;

/// What a tampering step may look at and change: the request, and state shared across requests.
type Edit = dyn Fn(&mut HttpRequest, &mut Memory) + Send + Sync;

/// Which requests a storm repeats.
type Matcher = fn(&HttpRequest) -> bool;

/// State a tamperer keeps across requests (the first assertion seen, …).
#[derive(Debug, Default)]
struct Memory {
    first: Option<String>,
    count: usize,
}

/// A transport that edits requests before they reach the recording, and may resend some.
struct Tamper {
    inner: Arc<dyn HttpClient>,
    edit: Box<Edit>,
    memory: Mutex<Memory>,
    /// Resend a request this many extra times when its answer is 4xx/5xx and it goes to a path
    /// ending with this suffix (a retrying client).
    retry: Option<(&'static str, usize)>,
    /// Send matching requests this many extra times whatever the answer, and return the first
    /// answer (a client that repeats itself).
    storm: Option<(Matcher, usize)>,
}

impl std::fmt::Debug for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tamper")
    }
}

#[async_trait]
impl HttpClient for Tamper {
    async fn execute(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        {
            let mut memory = self.memory.lock().expect("lock");
            (self.edit)(&mut request, &mut memory);
        }
        let again = self
            .retry
            .filter(|(suffix, _)| request.uri().path().ends_with(suffix))
            .map(|(_, n)| n)
            .unwrap_or(0);
        let copy = clone(&request);
        if let Some((matches, n)) = self.storm
            && matches(&copy)
        {
            let first = self.inner.execute(request).await?;
            for _ in 0..n {
                let _ = self.inner.execute(clone(&copy)).await;
            }
            return Ok(first);
        }
        let mut response = self.inner.execute(request).await?;
        for _ in 0..again {
            if response.status().is_success() {
                break;
            }
            response = self.inner.execute(clone(&copy)).await?;
        }
        Ok(response)
    }
}

fn clone(r: &HttpRequest) -> HttpRequest {
    let mut b = http::Request::builder()
        .method(r.method().clone())
        .uri(r.uri().clone());
    if let Some(h) = b.headers_mut() {
        *h = r.headers().clone();
    }
    b.body(r.body().clone()).expect("request")
}

fn harness(edit: impl Fn(&mut HttpRequest, &mut Memory) + Send + Sync + 'static) -> Harness {
    let edit: Arc<Edit> = Arc::new(edit);
    Harness::with_transport(move |inner| {
        let edit = edit.clone();
        Arc::new(Tamper {
            inner,
            edit: Box::new(move |r, m| edit(r, m)),
            memory: Mutex::new(Memory::default()),
            retry: None,
            storm: None,
        })
    })
}

fn retrying(suffix: &'static str, times: usize) -> Harness {
    Harness::with_transport(move |inner| {
        Arc::new(Tamper {
            inner,
            edit: Box::new(|_, _| {}),
            memory: Mutex::new(Memory::default()),
            retry: Some((suffix, times)),
            storm: None,
        })
    })
}

fn storming(matches: Matcher, times: usize) -> Harness {
    Harness::with_transport(move |inner| {
        Arc::new(Tamper {
            inner,
            edit: Box::new(|_, _| {}),
            memory: Mutex::new(Memory::default()),
            retry: None,
            storm: Some((matches, times)),
        })
    })
}

fn is_authorize(r: &HttpRequest) -> bool {
    r.uri().path().ends_with("/auth/authorize")
}

fn is_token(r: &HttpRequest) -> bool {
    r.uri().path().ends_with("/auth/token")
}

fn form(r: &HttpRequest) -> Pairs {
    url::form_urlencoded::parse(r.body()).into_owned().collect()
}

fn grant(r: &HttpRequest) -> Option<String> {
    form(r)
        .into_iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v)
}

/// Edits the form body.
fn edit_form(r: &mut HttpRequest, f: impl FnOnce(&mut Pairs)) {
    let mut pairs = form(r);
    f(&mut pairs);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    *r.body_mut() = body.into_bytes();
}

/// Edits the query string.
fn edit_query(r: &mut HttpRequest, f: impl FnOnce(&mut Pairs)) {
    let mut url = url::Url::parse(&r.uri().to_string()).expect("url");
    let mut pairs: Pairs = url.query_pairs().into_owned().collect();
    f(&mut pairs);
    url.query_pairs_mut().clear().extend_pairs(pairs);
    *r.uri_mut() = url.as_str().parse().expect("uri");
}

/// Edits the authorization request's parameters, wherever they are (GET query or POST form).
fn edit_authorize(r: &mut HttpRequest, f: impl FnOnce(&mut Pairs)) {
    if r.method() == http::Method::POST {
        edit_form(r, f);
    } else {
        edit_query(r, f);
    }
}

fn set(pairs: &mut Pairs, name: &str, value: &str) {
    pairs.retain(|(k, _)| k != name);
    pairs.push((name.into(), value.into()));
}

fn remove(pairs: &mut Pairs, name: &str) {
    pairs.retain(|(k, _)| k != name);
}

fn get(pairs: &Pairs, name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Runs client check `id` with `h` and asserts it failed with a detail containing `about`.
async fn assert_fails(id: &str, h: Harness, about: &str) {
    let check = client_checks::by_id(id).expect("check id");
    let r = check.run(&h).await;
    match &r.status {
        Status::Fail(detail) => assert!(
            detail.to_lowercase().contains(&about.to_lowercase()),
            "{id} failed, but not about `{about}`: {detail}"
        ),
        other => panic!("{id} did not notice the breakage: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_2_1_notices_a_short_state() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| set(p, "state", "abc12345"));
        }
    });
    assert_fails("C-2.1", h, "state").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_2_2_notices_a_repeated_state() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| {
                set(p, "state", "the-same-state-every-time-0123456789ab")
            });
        }
    });
    assert_fails("C-2.2", h, "same `state`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_4_1_notices_a_dropped_code_challenge() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| {
                remove(p, "code_challenge");
                remove(p, "code_challenge_method");
            });
        }
    });
    assert_fails("C-4.1", h, "code_challenge").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_4_1_notices_plain_pkce() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| set(p, "code_challenge_method", "plain"));
        }
    });
    assert_fails("C-4.1", h, "S256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_4_2_notices_a_verifier_that_does_not_match() {
    let h = harness(|r, _| {
        if is_token(r) && grant(r).as_deref() == Some("authorization_code") {
            edit_form(r, |p| {
                set(p, "code_verifier", &"v".repeat(43));
            });
        }
    });
    assert_fails("C-4.2", h, "code_challenge").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_6_notices_a_discovery_without_json_accept() {
    let h = harness(|r, _| {
        if r.uri().path().ends_with("/.well-known/smart-configuration") {
            r.headers_mut()
                .insert(http::header::ACCEPT, "text/html".parse().expect("value"));
        }
    });
    assert_fails("C-6", h, "accept").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_7_1_notices_an_unregistered_redirect_uri() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| {
                set(p, "redirect_uri", "http://127.0.0.1:9/elsewhere")
            });
        }
    });
    assert_fails("C-7.1", h, "redirect_uri").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_7_2_notices_an_aud_with_a_trailing_slash() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| {
                let aud = get(p, "aud").unwrap_or_default();
                set(p, "aud", &format!("{aud}/"));
            });
        }
    });
    assert_fails("C-7.2", h, "aud").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_7_3_notices_a_changed_launch_value() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| set(p, "launch", "not-the-issued-launch"));
        }
    });
    assert_fails("C-7.3", h, "launch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_7_4_notices_a_launch_parameter_on_a_standalone_launch() {
    let h = harness(|r, _| {
        if is_authorize(r) {
            edit_authorize(r, |p| set(p, "launch", "xyz"));
        }
    });
    assert_fails("C-7.4", h, "launch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_9_1_notices_another_redirect_uri_in_the_code_exchange() {
    let h = harness(|r, _| {
        if is_token(r) && grant(r).as_deref() == Some("authorization_code") {
            edit_form(r, |p| set(p, "redirect_uri", "http://127.0.0.1:9/other"));
        }
    });
    assert_fails("C-9.1", h, "redirect_uri").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_9_2_notices_a_public_client_without_client_id() {
    let h = harness(|r, _| {
        if is_token(r) {
            edit_form(r, |p| remove(p, "client_id"));
        }
    });
    assert_fails("C-9.2", h, "client_id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_10_notices_basic_credentials_without_form_encoding() {
    let h = harness(|r, _| {
        if is_token(r) {
            let raw = base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
            r.headers_mut().insert(
                http::header::AUTHORIZATION,
                format!("Basic {raw}").parse().expect("value"),
            );
        }
    });
    assert_fails("C-10", h, "Basic").await;
}

/// Changes the last characters of every client assertion's signature.
fn corrupt_assertions() -> Harness {
    harness(|r, _| {
        if is_token(r) {
            edit_form(r, |p| {
                if let Some(a) = get(p, "client_assertion") {
                    let cut = a.len() - 4;
                    let tail = if &a[cut..] == "AAAA" { "BBBB" } else { "AAAA" };
                    set(p, "client_assertion", &format!("{}{tail}", &a[..cut]));
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_11_1_notices_an_assertion_that_does_not_verify() {
    assert_fails("C-11.1", corrupt_assertions(), "assertion").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_11_3_notices_an_rsa_assertion_that_does_not_verify() {
    assert_fails("C-11.3", corrupt_assertions(), "assertion").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_11_2_notices_a_reused_jti() {
    let h = harness(|r, m| {
        if is_token(r) {
            edit_form(r, |p| {
                if let Some(a) = get(p, "client_assertion") {
                    match &m.first {
                        None => m.first = Some(a),
                        Some(first) => set(p, "client_assertion", first),
                    }
                }
            });
        }
    });
    // The sandbox refuses the replayed assertion, so the check fails either on the refused
    // request or on the repeated jti; both are about the jti reuse.
    let check = client_checks::by_id("C-11.2").expect("id");
    let r = check.run(&h).await;
    assert!(matches!(r.status, Status::Fail(_)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_12_notices_a_token_that_was_never_issued() {
    let h = harness(|r, _| {
        if r.uri().path().contains("/fhir/Patient") {
            r.headers_mut().insert(
                http::header::AUTHORIZATION,
                "Bearer made-up-token".parse().expect("value"),
            );
        }
    });
    assert_fails("C-12", h, "token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_13_1_notices_a_refresh_without_client_authentication() {
    let h = harness(|r, _| {
        if is_token(r) && grant(r).as_deref() == Some("refresh_token") {
            r.headers_mut().remove(http::header::AUTHORIZATION);
        }
    });
    assert_fails("C-13.1", h, "authenticate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_13_2_notices_a_rotated_token_left_unused() {
    let h = harness(|r, m| {
        if is_token(r) && grant(r).as_deref() == Some("refresh_token") {
            edit_form(r, |p| {
                let sent = get(p, "refresh_token").unwrap_or_default();
                match &m.first {
                    None => m.first = Some(sent),
                    Some(first) => set(p, "refresh_token", first),
                }
            });
        }
    });
    assert_fails("C-13.2", h, "rotated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_13_3_notices_a_refresh_with_another_token() {
    let h = harness(|r, m| {
        if is_token(r) && grant(r).as_deref() == Some("refresh_token") {
            m.count += 1;
            if m.count == 2 {
                edit_form(r, |p| set(p, "refresh_token", "forgotten-and-made-up"));
            }
        }
    });
    assert_fails("C-13.3", h, "refresh").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_13_4_notices_a_narrower_refresh_without_scope() {
    let h = harness(|r, _| {
        if is_token(r) && grant(r).as_deref() == Some("refresh_token") {
            edit_form(r, |p| remove(p, "scope"));
        }
    });
    assert_fails("C-13.4", h, "scope").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_16_notices_a_backend_request_without_scope() {
    let h = harness(|r, _| {
        if is_token(r) && grant(r).as_deref() == Some("client_credentials") {
            edit_form(r, |p| remove(p, "scope"));
        }
    });
    assert_fails("C-16", h, "scope").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_e11_notices_a_retried_dead_refresh_token() {
    assert_fails("C-E11", retrying("/auth/token", 2), "refresh requests").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_e18_notices_a_retry_storm_on_temporarily_unavailable() {
    assert_fails("C-E18", retrying("/auth/token", 5), "token requests").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_8_notices_a_large_request_sent_by_get() {
    let h = harness(|r, _| {
        if is_authorize(r) && r.method() == http::Method::POST {
            let query = String::from_utf8_lossy(r.body()).into_owned();
            let mut url = url::Url::parse(&r.uri().to_string()).expect("url");
            url.set_query(Some(&query));
            *r.uri_mut() = url.as_str().parse().expect("uri");
            *r.method_mut() = http::Method::GET;
            r.body_mut().clear();
            r.headers_mut().remove(http::header::CONTENT_TYPE);
        }
    });
    assert_fails("C-8", h, "GET").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_e17_notices_repeated_refreshes_after_a_401() {
    let h = storming(
        |r| is_token(r) && grant(r).as_deref() == Some("refresh_token"),
        2,
    );
    assert_fails("C-E17", h, "refreshes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_e21_notices_a_request_storm_on_503() {
    let h = storming(|r| r.uri().path().ends_with("/Patient/pat-1"), 3);
    assert_fails("C-E21", h, "FHIR requests").await;
}

/// The other half of each test above: untampered, every client check passes (SHOULD checks
/// included), so a failure above is caused by the tampering alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_check_passes_untampered() {
    let mut failed = Vec::new();
    for check in client_checks::all() {
        let r = check.run(&Harness::new()).await;
        if r.status != Status::Pass {
            failed.push(format!("{} {:?}", r.def.id, r.status));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
