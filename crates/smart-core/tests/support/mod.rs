//! Shared helpers for the integration tests: a sandbox, a client wired to it, instrumented
//! transport and store, and a tampering adapter.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use smart_core::headless::authorize_headless;
use smart_core::http::{HttpClient, HttpError, HttpRequest, HttpResponse, ReqwestHttpClient};
use smart_core::quirks::{HookContext, TokenGrant, TokenRequestParts, VendorQuirks};
use smart_core::scope::Scopes;
use smart_core::secret::ClientSecret;
use smart_core::store::{Lease, PendingLaunch, Session, SessionId, Store, StoreError, Versioned};
use smart_core::{
    AuthorizationRequest, CallbackParams, ClientRegistration, CompletedLaunch, SmartClient,
    StandaloneLaunch,
};
use smart_sandbox::{DEMO_REDIRECT_URI, DEMO_SECRET, LaunchContextRequest, Sandbox, SandboxConfig};

/// Counts every request sent through it and keeps the request bodies.
#[derive(Debug)]
pub struct CountingHttp {
    inner: ReqwestHttpClient,
    pub sent: AtomicUsize,
    pub bodies: Mutex<Vec<String>>,
}

impl CountingHttp {
    pub fn new() -> Arc<Self> {
        Arc::new(CountingHttp {
            inner: ReqwestHttpClient::new().expect("http client"),
            sent: AtomicUsize::new(0),
            bodies: Mutex::new(Vec::new()),
        })
    }
    pub fn count(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
    /// Every value of form field `name` sent so far.
    pub fn form_values(&self, name: &str) -> Vec<String> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|b| {
                url::form_urlencoded::parse(b.as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect()
    }
}

#[async_trait]
impl HttpClient for CountingHttp {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.bodies
            .lock()
            .expect("lock")
            .push(String::from_utf8_lossy(request.body()).into_owned());
        self.inner.execute(request).await
    }
}

/// Registers an asymmetric client with the sandbox (inline JWKS) and returns its keys.
pub fn register_asymmetric(
    sandbox: &Sandbox,
    client_id: &str,
    alg: smart_core::smart_jose::Algorithm,
    grant_types: &[&str],
    scopes: &str,
    context: smart_sandbox::LaunchDefaults,
) -> smart_core::ClientKeys {
    let key = smart_core::smart_jose::PrivateKey::generate(alg).expect("key");
    let keys = smart_core::ClientKeys::new(key);
    sandbox.register_client(smart_sandbox::ClientRegistration {
        client_id: client_id.into(),
        auth: smart_sandbox::ClientAuth::PrivateKeyJwt {
            jwks: Some(keys.jwks()),
            jwks_url: None,
        },
        redirect_uris: vec![DEMO_REDIRECT_URI.into()],
        launch_uri: None,
        scopes: scopes.into(),
        context,
        grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
    });
    keys
}

/// A store that remembers every PKCE verifier it was given (to check logs for them).
#[derive(Debug, Default)]
pub struct RecordingStore {
    inner: smart_core::MemoryStore,
    pub verifiers: Mutex<Vec<String>>,
}

#[async_trait]
impl Store for RecordingStore {
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError> {
        self.verifiers
            .lock()
            .expect("lock")
            .push(launch.pkce_verifier.expose_secret().to_owned());
        self.inner.put_pending_launch(state, launch).await
    }
    async fn take_pending_launch(&self, state: &str) -> Result<Option<PendingLaunch>, StoreError> {
        self.inner.take_pending_launch(state).await
    }
    async fn insert_session(&self, id: &SessionId, session: &Session) -> Result<u64, StoreError> {
        self.inner.insert_session(id, session).await
    }
    async fn load_session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        self.inner.load_session(id).await
    }
    async fn compare_and_swap_session(
        &self,
        id: &SessionId,
        v: u64,
        s: &Session,
    ) -> Result<u64, StoreError> {
        self.inner.compare_and_swap_session(id, v, s).await
    }
    async fn delete_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.delete_session(id).await
    }
    async fn try_acquire_lease(
        &self,
        id: &SessionId,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.inner.try_acquire_lease(id, owner, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.inner.release_lease(lease).await
    }
}

/// A [`Store`] method, as counted by [`CountingStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreCall {
    PutPendingLaunch,
    TakePendingLaunch,
    InsertSession,
    LoadSession,
    CompareAndSwap,
    DeleteSession,
    AcquireLease,
    ReleaseLease,
    RenewLease,
    PurgeExpired,
}

/// Decides whether a call fails, and with what.
pub type StoreFault = Box<dyn FnMut(StoreCall) -> Option<StoreError> + Send>;

/// A store in front of another one (which other clients may share): counts every call by
/// method, and fails a call when the installed [`StoreFault`] says so.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counts: Mutex<std::collections::HashMap<StoreCall, usize>>,
    fault: Mutex<Option<StoreFault>>,
}

impl std::fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountingStore")
    }
}

impl CountingStore {
    /// In front of a new memory store.
    pub fn new() -> Arc<Self> {
        Self::over(Arc::new(smart_core::MemoryStore::new()))
    }
    /// In front of `inner`.
    pub fn over(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            counts: Mutex::default(),
            fault: Mutex::new(None),
        })
    }
    /// How many `call`s went through so far (failed ones included).
    pub fn count(&self, call: StoreCall) -> usize {
        self.counts
            .lock()
            .expect("lock")
            .get(&call)
            .copied()
            .unwrap_or(0)
    }
    /// From now on, `fault` decides which calls fail.
    pub fn fail_with(&self, fault: impl FnMut(StoreCall) -> Option<StoreError> + Send + 'static) {
        *self.fault.lock().expect("lock") = Some(Box::new(fault));
    }
    fn enter(&self, call: StoreCall) -> Result<(), StoreError> {
        *self.counts.lock().expect("lock").entry(call).or_default() += 1;
        match self.fault.lock().expect("lock").as_mut() {
            Some(fault) => fault(call).map_or(Ok(()), Err),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError> {
        self.enter(StoreCall::PutPendingLaunch)?;
        self.inner.put_pending_launch(state, launch).await
    }
    async fn take_pending_launch(&self, state: &str) -> Result<Option<PendingLaunch>, StoreError> {
        self.enter(StoreCall::TakePendingLaunch)?;
        self.inner.take_pending_launch(state).await
    }
    async fn insert_session(&self, id: &SessionId, session: &Session) -> Result<u64, StoreError> {
        self.enter(StoreCall::InsertSession)?;
        self.inner.insert_session(id, session).await
    }
    async fn load_session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        self.enter(StoreCall::LoadSession)?;
        self.inner.load_session(id).await
    }
    async fn compare_and_swap_session(
        &self,
        id: &SessionId,
        v: u64,
        s: &Session,
    ) -> Result<u64, StoreError> {
        self.enter(StoreCall::CompareAndSwap)?;
        self.inner.compare_and_swap_session(id, v, s).await
    }
    async fn delete_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.enter(StoreCall::DeleteSession)?;
        self.inner.delete_session(id).await
    }
    async fn try_acquire_lease(
        &self,
        id: &SessionId,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.enter(StoreCall::AcquireLease)?;
        self.inner.try_acquire_lease(id, owner, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.enter(StoreCall::ReleaseLease)?;
        self.inner.release_lease(lease).await
    }
    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.enter(StoreCall::RenewLease)?;
        self.inner.renew_lease(lease, ttl).await
    }
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.enter(StoreCall::PurgeExpired)?;
        self.inner.purge_expired().await
    }
}

/// How [`Tamper`] changes the code exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tampering {
    /// Send another redirect_uri than the authorization request had.
    RedirectUri,
    /// Send another code_verifier.
    Verifier,
    /// Repeat the first code exchange's code and verifier.
    ReplayFirstCode,
}

/// A test adapter (named `generic` so it replaces the spec adapter) that tampers with the code
/// exchange in one chosen way, to check that the sandbox catches it.
#[derive(Debug)]
pub struct Tamper {
    pub how: Tampering,
    first: Mutex<Option<(String, String)>>,
}

impl Tamper {
    pub fn new(how: Tampering) -> Arc<Self> {
        Arc::new(Tamper {
            how,
            first: Mutex::new(None),
        })
    }
}

fn set(form: &mut [(String, String)], name: &str, value: &str) {
    if let Some(slot) = form.iter_mut().find(|(k, _)| k == name) {
        slot.1 = value.to_owned();
    }
}

fn get(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

impl VendorQuirks for Tamper {
    fn name(&self) -> &str {
        "generic"
    }
    fn token_request(&self, ctx: &HookContext<'_>, request: &mut TokenRequestParts) {
        if ctx.grant() != Some(TokenGrant::AuthorizationCode) {
            return;
        }
        match self.how {
            Tampering::RedirectUri => set(
                &mut request.form,
                "redirect_uri",
                "http://127.0.0.1:8765/other",
            ),
            Tampering::Verifier => set(&mut request.form, "code_verifier", &"x".repeat(43)),
            Tampering::ReplayFirstCode => {
                let mut first = self.first.lock().expect("lock");
                match first.as_ref() {
                    None => {
                        *first = Some((
                            get(&request.form, "code"),
                            get(&request.form, "code_verifier"),
                        ));
                    }
                    Some((code, verifier)) => {
                        set(&mut request.form, "code", code);
                        set(&mut request.form, "code_verifier", verifier);
                    }
                }
            }
        }
    }
}

pub const STANDALONE_SCOPES: &str = "launch/patient patient/*.rs offline_access";

pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts")
}

pub fn public_registration(base: &str) -> ClientRegistration {
    ClientRegistration::public(base, "demo-public", DEMO_REDIRECT_URI)
        .with_scopes(Scopes::parse(STANDALONE_SCOPES))
}

pub fn confidential_registration(base: &str) -> ClientRegistration {
    ClientRegistration::confidential_symmetric(
        base,
        "demo-confidential",
        ClientSecret::new(DEMO_SECRET),
        DEMO_REDIRECT_URI,
    )
    .with_scopes(Scopes::parse("launch patient/*.rs offline_access"))
}

pub fn client_with(
    registrations: Vec<(&str, ClientRegistration)>,
    adapter: Arc<dyn VendorQuirks>,
    http: Option<Arc<dyn HttpClient>>,
    store: Option<Arc<dyn Store>>,
) -> SmartClient {
    let mut builder = SmartClient::builder().adapter(adapter);
    for (name, registration) in registrations {
        builder = builder.registration(name, registration);
    }
    if let Some(http) = http {
        builder = builder.http(http);
    }
    if let Some(store) = store {
        builder = builder.store(store);
    }
    builder.build().expect("client builds")
}

pub fn public_client(base: &str) -> SmartClient {
    client_with(
        vec![("public", public_registration(base))],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    )
}

pub async fn callback_for(client: &SmartClient, request: &AuthorizationRequest) -> CallbackParams {
    authorize_headless(&**client.http(), request, DEMO_REDIRECT_URI)
        .await
        .expect("sandbox redirects back")
}

pub async fn standalone(client: &SmartClient, base: &str) -> CompletedLaunch {
    let request = client
        .begin_standalone_launch(base, StandaloneLaunch::default())
        .await
        .expect("begin");
    let callback = callback_for(client, &request).await;
    client.complete_launch(&callback).await.expect("complete")
}

pub async fn ehr(
    client: &SmartClient,
    sandbox: &Sandbox,
    client_id: &str,
    patient: &str,
) -> CompletedLaunch {
    let launch = sandbox
        .issue_launch(
            client_id,
            LaunchContextRequest {
                patient: Some(patient.into()),
                ..Default::default()
            },
        )
        .expect("launch token");
    let request = client
        .begin_ehr_launch(&sandbox.fhir_base(), &launch)
        .await
        .expect("begin");
    let callback = callback_for(client, &request).await;
    client.complete_launch(&callback).await.expect("complete")
}
