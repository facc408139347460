//! A refresh never drops the tokens the server issued (issue 8 item 1): a refreshed `id_token`
//! that does not check out becomes a warning, a lost compare-and-swap is retried, and a store
//! that cannot save the tokens hands them back. All against the sandbox over real HTTP.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use smart_core::identity::RefreshWarning;
use smart_core::scope::Scopes;
use smart_core::store::{Lease, PendingLaunch, Session, SessionId, Store, StoreError, Versioned};
use smart_core::{
    ClientRegistration, CompletedLaunch, MemoryStore, RefreshError, RefreshOptions, SmartClient,
};
use smart_sandbox::{DEMO_REDIRECT_URI, IdTokenFault, Sandbox};
use support::*;

const OIDC_SCOPES: &str = "launch/patient patient/*.rs openid fhirUser offline_access";

fn oidc_client(base: &str, store: Option<Arc<dyn Store>>) -> SmartClient {
    let registration = ClientRegistration::public(base, "demo-public", DEMO_REDIRECT_URI)
        .with_scopes(Scopes::parse(OIDC_SCOPES));
    client_with(
        vec![("p", registration)],
        Arc::new(smart_adapter_generic::Generic),
        None,
        store,
    )
}

async fn signed_in(
    sandbox: &Sandbox,
    store: Option<Arc<dyn Store>>,
) -> (SmartClient, CompletedLaunch) {
    let base = sandbox.fhir_base();
    let client = oidc_client(&base, store);
    let done = standalone(&client, &base).await;
    assert!(
        done.session.identity.is_some(),
        "the launch verified an id_token"
    );
    assert!(done.session.tokens.id_token.is_some());
    (client, done)
}

/// The new access and refresh tokens were kept and stored, and the launch identity and id_token
/// are still the session's.
async fn assert_tokens_kept_identity_unchanged(
    client: &SmartClient,
    done: &CompletedLaunch,
    refreshed: &Versioned<Session>,
) {
    let old = &done.session.tokens;
    let new = &refreshed.value.tokens;
    assert_ne!(new.access_token, old.access_token, "new access token kept");
    assert_ne!(
        new.refresh_token, old.refresh_token,
        "rotated refresh token kept"
    );
    assert_eq!(
        refreshed.value.identity, done.session.identity,
        "launch identity kept"
    );
    assert_eq!(
        new.id_token, old.id_token,
        "the launch's id_token stays with its identity"
    );
    let stored = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    assert_eq!(&stored, refreshed, "what was returned is what was stored");
}

#[tokio::test]
async fn refreshed_id_token_without_aud_keeps_the_tokens_and_the_launch_identity_and_warns() {
    let sandbox = sandbox().await;
    let (client, done) = signed_in(&sandbox, None).await;
    sandbox.set_behavior(|b| b.refreshed_id_token_omits_aud = true);
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("a refreshed id_token without aud must not fail the refresh");
    assert_tokens_kept_identity_unchanged(&client, &done, &refreshed).await;
    assert_eq!(
        refreshed.value.refresh_warnings,
        vec![RefreshWarning::IdTokenAudienceMissing]
    );
    let shown = refreshed.value.refresh_warnings[0].to_string();
    assert!(shown.contains("no `aud`"), "{shown}");

    // The stored (rotated) refresh token is the live one: the next refresh works, and with a
    // conformant id_token again the warning goes away and the identity is re-verified.
    sandbox.set_behavior(|b| b.refreshed_id_token_omits_aud = false);
    let again = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("the kept refresh token works");
    assert!(again.value.refresh_warnings.is_empty());
    let identity = again.value.identity.expect("identity");
    assert_eq!(
        identity.sub,
        done.session.identity.as_ref().expect("launch").sub
    );
}

#[tokio::test]
async fn refreshed_id_token_for_another_audience_is_a_distinct_warning() {
    let sandbox = sandbox().await;
    let (client, done) = signed_in(&sandbox, None).await;
    sandbox.set_behavior(|b| b.id_token_fault = IdTokenFault::WrongAudience);
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh keeps the tokens");
    assert_tokens_kept_identity_unchanged(&client, &done, &refreshed).await;
    match refreshed.value.refresh_warnings.as_slice() {
        [RefreshWarning::IdTokenWrongAudience { audience }] => {
            assert!(audience.contains("demo-public-other-app"), "{audience}");
        }
        other => panic!("expected one wrong-audience warning, got {other:?}"),
    }
    assert!(
        !refreshed.value.refresh_warnings[0]
            .to_string()
            .contains("no `aud`"),
        "wrong audience is not reported as a missing one"
    );
}

#[tokio::test]
async fn refreshed_id_token_with_another_subject_keeps_the_tokens_and_the_launch_identity() {
    let sandbox = sandbox().await;
    let (client, done) = signed_in(&sandbox, None).await;
    let launch_sub = done
        .session
        .identity
        .as_ref()
        .expect("identity")
        .sub
        .clone();
    sandbox.set_behavior(|b| b.refreshed_id_token_changes_sub = true);
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh keeps the tokens");
    assert_tokens_kept_identity_unchanged(&client, &done, &refreshed).await;
    assert_eq!(
        refreshed.value.refresh_warnings,
        vec![RefreshWarning::IdTokenSubjectChanged {
            launch: launch_sub.clone(),
            refreshed: format!("{launch_sub}-changed"),
        }]
    );
}

#[tokio::test]
async fn refreshed_id_token_with_a_bad_signature_is_ignored_but_the_tokens_are_kept() {
    let sandbox = sandbox().await;
    let (client, done) = signed_in(&sandbox, None).await;
    sandbox.set_behavior(|b| b.id_token_fault = IdTokenFault::BadSignature);
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("refresh keeps the tokens");
    assert_tokens_kept_identity_unchanged(&client, &done, &refreshed).await;
    match refreshed.value.refresh_warnings.as_slice() {
        [RefreshWarning::IdTokenRejected { reason }] => {
            assert!(reason.contains("signature"), "{reason}");
        }
        other => panic!("expected one rejection warning, got {other:?}"),
    }
}

/// A store whose compare-and-swap can be made to lose a race (a real competing write lands just
/// before it) or to fail outright.
#[derive(Debug, Default)]
struct RacyStore {
    inner: MemoryStore,
    competing_writes: AtomicUsize,
    fail_writes: AtomicBool,
}

#[async_trait]
impl Store for RacyStore {
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError> {
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
        version: u64,
        session: &Session,
    ) -> Result<u64, StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("disk full".into()));
        }
        if self
            .competing_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            // Another worker (whose lease this one outlived) writes the session first.
            let current = self.inner.load_session(id).await?.expect("session");
            self.inner
                .compare_and_swap_session(id, current.version, &current.value)
                .await?;
        }
        self.inner
            .compare_and_swap_session(id, version, session)
            .await
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

#[tokio::test]
async fn a_lost_compare_and_swap_after_the_response_still_saves_the_rotated_refresh_token() {
    let sandbox = sandbox().await;
    let store = Arc::new(RacyStore::default());
    let (client, done) = signed_in(&sandbox, Some(store.clone())).await;
    store.competing_writes.store(1, Ordering::SeqCst);
    let refreshed = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("a lost CAS must not lose the refresh");
    assert_eq!(
        store.competing_writes.load(Ordering::SeqCst),
        0,
        "the race happened"
    );
    assert_eq!(
        refreshed.version,
        done.version + 2,
        "saved over the competing write"
    );
    assert_ne!(
        refreshed.value.tokens.refresh_token,
        done.session.tokens.refresh_token
    );
    // The saved refresh token is the live one (the sandbox revoked the old one on rotation).
    client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("the saved rotated refresh token works");
}

#[tokio::test]
async fn a_store_that_cannot_save_gets_the_new_tokens_back_in_the_error() {
    let sandbox = sandbox().await;
    let store = Arc::new(RacyStore::default());
    let (client, done) = signed_in(&sandbox, Some(store.clone())).await;
    store.fail_writes.store(true, Ordering::SeqCst);
    let refreshes_before = sandbox.counters().refresh_requests;
    let err = client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect_err("the store fails");
    assert_eq!(sandbox.counters().refresh_requests, refreshes_before + 1);
    let RefreshError::NotSaved { session, source } = err else {
        panic!("expected NotSaved, got {err:?}");
    };
    assert!(source.to_string().contains("disk full"));
    assert_ne!(
        session.tokens.refresh_token,
        done.session.tokens.refresh_token
    );
    // The app saves what the error handed back, and the grant lives on.
    store.fail_writes.store(false, Ordering::SeqCst);
    let current = client
        .session(&done.session_id)
        .await
        .expect("load")
        .expect("present");
    store
        .compare_and_swap_session(&done.session_id, current.version, &session)
        .await
        .expect("save");
    client
        .refresh(&done.session_id, RefreshOptions::default())
        .await
        .expect("the refresh token carried by the error is the live one");
}

/// A token endpoint on 127.0.0.1 that answers every request with `200` and `body`.
async fn token_server(body: &'static str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // Read the head and the declared body, then answer.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_unusable_success_response_still_leaves_its_rotated_refresh_token_in_the_store() {
    // `token_type` MAC is refused, but the server has already rotated the refresh token.
    let origin = token_server(
        r#"{"access_token":"a-new","token_type":"MAC","expires_in":3600,"refresh_token":"r-rotated"}"#,
    )
    .await;
    let base = format!("{origin}/fhir");
    let client = client_with(
        vec![(
            "test",
            ClientRegistration::public(&base, "app", DEMO_REDIRECT_URI),
        )],
        Arc::new(smart_adapter_generic::Generic),
        None,
        None,
    );
    let mut session = smart_core::store::testsuite::sample_session("a-old");
    session.fhir_base = base.clone().into();
    session.token_endpoint = format!("{origin}/token");
    let id = SessionId::generate();
    client
        .store()
        .insert_session(&id, &session)
        .await
        .expect("insert");

    let err = client
        .refresh(&id, RefreshOptions::default())
        .await
        .expect_err("the response is unusable");
    assert!(matches!(err, RefreshError::Token(_)), "{err:?}");
    let stored = client.session(&id).await.expect("load").expect("present");
    assert_eq!(
        stored
            .value
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret()),
        Some("r-rotated"),
        "the rotated refresh token is kept"
    );
    assert_eq!(stored.value.tokens.access_token.expose_secret(), "a-old");
}
