//! Sessions saved between CLI invocations: `smart launch --save FILE` writes one, `smart fhir
//! --session FILE` uses (and refreshes) it.
//!
//! The file holds tokens, so it is created readable by its owner only (mode 0600) and never holds
//! a client secret or private key: those are passed again (`--client-secret`/`SMART_CLIENT_SECRET`
//! or `--key`) when the session needs to refresh.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smart_core::secret::ClientSecret;
use smart_core::store::{MemoryStore, Store};
use smart_core::{ClientRegistration, Session, SessionId, SmartClient};

/// What is saved.
#[derive(Debug, Serialize, Deserialize)]
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

pub(crate) fn write(path: &Path, saved: &SavedSession) -> Result<(), CliError> {
    use std::io::Write;
    let json = serde_json::to_vec_pretty(saved)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot write the session file {}: {e}", path.display()))?;
    file.write_all(&json)?;
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<SavedSession, CliError> {
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
    Ok(saved)
}

/// A client holding exactly the saved session, with the credentials given on the command line.
pub(crate) async fn client_for(
    saved: &SavedSession,
    client_secret: Option<&str>,
    key: Option<&Path>,
) -> Result<SmartClient, CliError> {
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
        other => return Err(format!("unknown client type `{other}` in the session file").into()),
    };
    let store = Arc::new(MemoryStore::new());
    let mut session = s.clone();
    session.registration = "cli".into();
    store.insert_session(&saved.session_id, &session).await?;
    Ok(smart_adapters::install(SmartClient::builder())
        .registration("cli", registration)
        .store(store)
        .build()?)
}
