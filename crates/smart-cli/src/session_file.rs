//! Sessions saved between CLI invocations: `smart launch --save FILE` writes one, `smart fhir
//! --session FILE` uses (and refreshes) it.
//!
//! The file holds tokens, so it is private to its owner (mode 0600, also when it existed before)
//! and never holds a client secret or private key: those are passed again
//! (`--client-secret`/`SMART_CLIENT_SECRET` or `--key`) when the session needs to refresh.
//!
//! Refresh tokens may rotate: once the server has answered a refresh, the old refresh token is
//! spent, and spending it again can revoke the whole grant. So the file is rewritten the moment a
//! refresh succeeds ([`SessionFileStore`]), before the FHIR request that needed it runs, not when
//! the command ends: a command that then fails (a 404), is piped into `head`, or is killed still
//! leaves the new tokens on disk. A refresh the server rejects marks the session ended in the file,
//! so later runs say so at once instead of asking the server again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use smart_core::secret::ClientSecret;
use smart_core::store::{
    Lease, MemoryStore, PendingLaunch, SessionStatus, Store, StoreError, Versioned,
};
use smart_core::{ClientRegistration, Session, SessionId, SmartClient};

/// What is saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedSession {
    /// Always 1 for this format.
    pub(crate) format: u32,
    pub(crate) session_id: SessionId,
    pub(crate) session: Session,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub(crate) client_type: String,
    pub(crate) redirect_uri: Option<String>,
}

type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Writes `saved` to `path` atomically, mode 0600, never through a link.
pub(crate) fn write(path: &Path, saved: &SavedSession) -> Result<(), CliError> {
    let json = serde_json::to_vec_pretty(saved)?;
    crate::files::replace(path, &json, crate::files::PRIVATE)
        .map_err(|e| format!("cannot save the session: {e}"))?;
    Ok(())
}

/// Reads a session file. A link is refused here already, before any token is used: a refresh
/// whose new tokens could not be saved afterwards would lose the grant.
pub(crate) fn read(path: &Path) -> Result<SavedSession, CliError> {
    crate::files::refuse_symlink(path)?;
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the session file {}: {e}; create one with `smart launch --save`",
            path.display()
        )
    })?;
    let saved: SavedSession = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a session file ({e}); create one with `smart launch --save`",
            path.display()
        )
    })?;
    if saved.format != 1 {
        return Err(format!(
            "{} has session format {}, this smart understands 1",
            path.display(),
            saved.format
        )
        .into());
    }
    if let SessionStatus::Ended { reason, .. } = &saved.session.status {
        return Err(format!(
            "the session in {} has ended ({}); start a new launch with `smart launch --save {}`",
            path.display(),
            crate::terminal::clean(reason),
            path.display()
        )
        .into());
    }
    Ok(saved)
}

/// A client holding exactly the saved session, with the credentials given on the command line,
/// and the store that writes every change of the session back to `path` at once.
pub(crate) async fn client_for(
    path: &Path,
    saved: &SavedSession,
    client_secret: Option<&str>,
    key: Option<&Path>,
) -> Result<(SmartClient, Arc<SessionFileStore>), CliError> {
    let s = &saved.session;
    let redirect = saved
        .redirect_uri
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1/unused".into());
    let registration = match saved.client_type.as_str() {
        "public" => ClientRegistration::public(&s.fhir_base, &s.client_id, redirect),
        "confidential-symmetric" => {
            let secret = client_secret.ok_or("this session belongs to a confidential client: pass --client-secret (or SMART_CLIENT_SECRET) so it can refresh")?;
            ClientRegistration::confidential_symmetric(
                &s.fhir_base,
                &s.client_id,
                ClientSecret::new(secret),
                redirect,
            )
        }
        "confidential-asymmetric" => {
            let key = key.ok_or(
                "this session belongs to an asymmetric client: pass --key so it can refresh",
            )?;
            ClientRegistration::confidential_asymmetric(
                &s.fhir_base,
                &s.client_id,
                crate::load_keys(key, None)?,
                redirect,
            )
        }
        other => {
            return Err(format!(
                "unknown client type `{}` in the session file",
                crate::terminal::clean(other)
            )
            .into());
        }
    };
    let store = Arc::new(SessionFileStore::open(path, saved).await?);
    let client = crate::net::client_builder()?
        .registration(REGISTRATION, registration)
        .store(store.clone())
        .build()?;
    Ok((client, store))
}

/// The registration name the CLI's client uses for the saved session.
const REGISTRATION: &str = "cli";

/// An in-memory store whose one session is mirrored to its file on every change.
///
/// Writes happen inside [`Store::compare_and_swap_session`], which the core calls as soon as a
/// refresh response has been accepted (and when a rejected refresh ends the session), so the file
/// is current before the request that needed the refresh is sent.
#[derive(Debug)]
pub(crate) struct SessionFileStore {
    memory: MemoryStore,
    path: PathBuf,
    /// The file's other fields; `session` is replaced on each write.
    saved: Mutex<SavedSession>,
    /// The last failed write, retried by [`SessionFileStore::finish`].
    unsaved: Mutex<Option<String>>,
}

impl SessionFileStore {
    /// Writes the CLI's own session to the file after the in-memory store accepted it, and says on
    /// stderr what a refresh the server answered oddly (e.g. an id_token without `aud`) left in
    /// `refresh_warnings`: the tokens were saved all the same.
    fn persist(&self, id: &SessionId, session: &Session) {
        if !self.is_saved_session(id) {
            return;
        }
        self.save(session);
        for warning in &session.refresh_warnings {
            crate::terminal::eprint_line(&format!(
                "warning: refresh: {}",
                smart_core::server_text::escape_controls(&warning.to_string())
            ));
        }
    }

    async fn open(path: &Path, saved: &SavedSession) -> Result<Self, StoreError> {
        let memory = MemoryStore::new();
        let mut session = saved.session.clone();
        session.registration = REGISTRATION.into();
        // Loading the file is not a change: it goes into memory without a write.
        memory.insert_session(&saved.session_id, &session).await?;
        Ok(SessionFileStore {
            memory,
            path: path.to_owned(),
            saved: Mutex::new(saved.clone()),
            unsaved: Mutex::new(None),
        })
    }

    /// Writes `session` to the file. A failure is reported on stderr and kept for
    /// [`finish`](Self::finish), but does not fail the store operation: the tokens are already
    /// spent at the server, and the running command can still use them.
    fn save(&self, session: &Session) {
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        saved.session = session.clone();
        let result = write(&self.path, &saved);
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => *unsaved = None,
            Err(e) => {
                crate::terminal::eprint_line(&format!(
                    "warning: the refreshed session could not be saved to {}: {e}",
                    self.path.display()
                ));
                *unsaved = Some(e.to_string());
            }
        }
    }

    /// At the end of a command: retries a write that failed, and fails if the file is still
    /// behind (the next run could otherwise spend a rotated-out refresh token).
    pub(crate) async fn finish(&self, id: &SessionId) -> Result<(), CliError> {
        let pending = self
            .unsaved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if pending.is_none() {
            return Ok(());
        }
        if let Some(current) = self.memory.load_session(id).await? {
            self.save(&current.value);
        }
        match self
            .unsaved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            None => Ok(()),
            Some(e) => Err(format!(
                "{e}; the file still holds the previous tokens, which the server may no longer accept (run `smart launch --save` again if the next run fails)"
            )
            .into()),
        }
    }

    fn is_saved_session(&self, id: &SessionId) -> bool {
        self.saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .session_id
            == *id
    }
}

#[async_trait]
impl Store for SessionFileStore {
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError> {
        self.memory.put_pending_launch(state, launch).await
    }

    async fn take_pending_launch(&self, state: &str) -> Result<Option<PendingLaunch>, StoreError> {
        self.memory.take_pending_launch(state).await
    }

    async fn insert_session(&self, id: &SessionId, session: &Session) -> Result<u64, StoreError> {
        let version = self.memory.insert_session(id, session).await?;
        self.persist(id, session);
        Ok(version)
    }

    async fn load_session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        self.memory.load_session(id).await
    }

    async fn compare_and_swap_session(
        &self,
        id: &SessionId,
        expected_version: u64,
        session: &Session,
    ) -> Result<u64, StoreError> {
        let version = self
            .memory
            .compare_and_swap_session(id, expected_version, session)
            .await?;
        self.persist(id, session);
        Ok(version)
    }

    async fn delete_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.memory.delete_session(id).await
    }

    async fn try_acquire_lease(
        &self,
        id: &SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.memory.try_acquire_lease(id, owner, ttl).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.memory.release_lease(lease).await
    }
}
