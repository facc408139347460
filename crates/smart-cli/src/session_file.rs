//! Reading the session files older versions wrote (`smart launch --save FILE`, format 1), for
//! `smart sessions import FILE`.
//!
//! Sessions now live in the session store (see `session_store`); the file format stays readable
//! so that existing files can be moved there. A file holds tokens and, by design, never a client
//! secret or private key.

use std::path::Path;

use serde::Deserialize;
use smart_core::store::SessionStatus;
use smart_core::{Session, SessionId};

use crate::session_store::ClientType;

/// The largest session file read: a session is a few kilobytes.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A format-1 session file.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SavedSession {
    /// Always 1 for this format.
    pub(crate) format: u32,
    /// The id the file's session had: read to recognise the format, not reused (an import
    /// gets a fresh one).
    #[serde(rename = "session_id")]
    _session_id: SessionId,
    pub(crate) session: Session,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub(crate) client_type: String,
    pub(crate) redirect_uri: Option<String>,
}

type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Reads and checks a session file: format 1, a known client type, a session that has not
/// ended. A link is refused.
pub(crate) fn read(path: &Path) -> Result<(SavedSession, ClientType), CliError> {
    crate::files::refuse_symlink(path)?;
    let cannot =
        |e: std::io::Error| format!("cannot read the session file {}: {e}", path.display());
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{} is {len} bytes, larger than a session file can be ({MAX_FILE_BYTES}); pass the file `smart launch --save` wrote",
            path.display()
        )
        .into());
    }
    let bytes = std::fs::read(path).map_err(cannot)?;
    let saved: SavedSession = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a session file ({e}); pass a file `smart launch --save` wrote",
            path.display()
        )
    })?;
    if saved.format != 1 {
        return Err(format!(
            "{} has session format {}, this smart imports format 1",
            path.display(),
            saved.format
        )
        .into());
    }
    let client_type = ClientType::parse(&saved.client_type).ok_or_else(|| {
        format!(
            "{}: unknown client type `{}` (expected public, confidential-symmetric or confidential-asymmetric)",
            path.display(),
            crate::terminal::clean(&saved.client_type)
        )
    })?;
    if let SessionStatus::Ended { reason, .. } = &saved.session.status {
        return Err(format!(
            "the session in {} has ended ({}); there is nothing to import: start a new launch with `smart launch … --headless`",
            path.display(),
            crate::terminal::clean(reason),
        )
        .into());
    }
    Ok((saved, client_type))
}
