//! One small vocabulary for "what does this failure mean for the app".
//!
//! The framework has an error enum per layer (discovery, token endpoint, launch, refresh, store,
//! FHIR…) because each layer has its own details worth keeping. But a web app answering a request
//! only needs to choose between a handful of responses: send the user back through the launch,
//! tell them their session is over, say access was denied, ask them to try again later, or page
//! an operator. Every public error of the framework therefore has `kind()` returning an
//! [`ErrorKind`] and `is_temporary()`, so that the choice is one `match`:
//!
//! ```
//! use smart_core::ErrorKind;
//!
//! fn status_for(kind: ErrorKind) -> u16 {
//!     match kind {
//!         ErrorKind::RelaunchNeeded | ErrorKind::SessionEnded => 401,
//!         ErrorKind::Denied => 403,
//!         ErrorKind::Temporary => 503,
//!         ErrorKind::NotFound => 404,
//!         ErrorKind::Conflict => 409,
//!         ErrorKind::InvalidRequest => 400,
//!         ErrorKind::Misconfigured | ErrorKind::ServerBroken | ErrorKind::Storage => 500,
//!     }
//! }
//! assert_eq!(status_for(ErrorKind::Temporary), 503);
//! ```
//!
//! This module is a leaf: it depends on nothing else in the crate, so any module (and any crate
//! that implements a store or a transport) can name the kinds without an import cycle.

use std::fmt;

/// What a failure means for the app, whatever layer it came from.
///
/// The enum is deliberately exhaustive (no `#[non_exhaustive]`): it is the stable contract an
/// app matches on, and a new kind would be a breaking change announced as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// This launch attempt cannot go on (unknown or replayed `state`, a callback from another
    /// browser, a spent authorization code, a possible mix-up attack): send the user through a
    /// new launch.
    RelaunchNeeded,
    /// The session is over (ended by the server, deleted, or never existed): the user signs in
    /// again.
    SessionEnded,
    /// The user or the EHR's policy refused (`access_denied`, a FHIR `403`): retrying the same
    /// thing will not help; explain and offer another way.
    Denied,
    /// A passing problem (timeout, connection refused, `temporarily_unavailable`, HTTP 5xx or
    /// 429, a lease held by another worker): retry later, ideally with back-off.
    Temporary,
    /// The app's configuration or registration does not match the server (unknown issuer, a
    /// client the EHR does not know, a missing redirect URI, an unsupported flow): an operator
    /// must fix it.
    Misconfigured,
    /// The server sent something that breaks the protocol (an invalid token response, an
    /// `id_token` that does not verify, a redirect where none belongs): report it to the EHR's
    /// operator; retrying rarely helps.
    ServerBroken,
    /// The app's own session or launch storage failed: the app's infrastructure needs attention.
    Storage,
    /// What was asked for does not exist or was deleted (a FHIR `404` or `410`).
    NotFound,
    /// Someone else changed the thing first (a FHIR `409` or `412`, a store version conflict):
    /// read it again and reapply the change.
    Conflict,
    /// The server refused the app's request as invalid (a FHIR `400` or `422`, a URL outside the
    /// FHIR base): the request must change before it can succeed.
    InvalidRequest,
}

impl ErrorKind {
    /// Whether retrying the same operation later may succeed (only [`ErrorKind::Temporary`]).
    pub fn is_temporary(self) -> bool {
        matches!(self, ErrorKind::Temporary)
    }

    /// Whether the user must go through a launch again ([`ErrorKind::RelaunchNeeded`] or
    /// [`ErrorKind::SessionEnded`]).
    pub fn needs_new_launch(self) -> bool {
        matches!(self, ErrorKind::RelaunchNeeded | ErrorKind::SessionEnded)
    }

    /// A stable snake_case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RelaunchNeeded => "relaunch_needed",
            ErrorKind::SessionEnded => "session_ended",
            ErrorKind::Denied => "denied",
            ErrorKind::Temporary => "temporary",
            ErrorKind::Misconfigured => "misconfigured",
            ErrorKind::ServerBroken => "server_broken",
            ErrorKind::Storage => "storage",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidRequest => "invalid_request",
        }
    }

    /// The kind of an HTTP status from a server, when it says something by itself: `429` and
    /// `5xx` are temporary, anything else is `fallback`.
    pub fn from_status(status: u16, fallback: ErrorKind) -> ErrorKind {
        if status == 429 || (500..=599).contains(&status) {
            ErrorKind::Temporary
        } else {
            fallback
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn only_temporary_is_temporary() {
        let all = [
            ErrorKind::RelaunchNeeded,
            ErrorKind::SessionEnded,
            ErrorKind::Denied,
            ErrorKind::Temporary,
            ErrorKind::Misconfigured,
            ErrorKind::ServerBroken,
            ErrorKind::Storage,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::InvalidRequest,
        ];
        let temporary: Vec<_> = all.iter().filter(|k| k.is_temporary()).collect();
        assert_eq!(temporary, [&ErrorKind::Temporary]);
        assert_eq!(
            ErrorKind::from_status(503, ErrorKind::ServerBroken),
            ErrorKind::Temporary
        );
        assert_eq!(
            ErrorKind::from_status(400, ErrorKind::ServerBroken),
            ErrorKind::ServerBroken
        );
        assert_eq!(
            serde_json::to_string(&ErrorKind::RelaunchNeeded).expect("json"),
            "\"relaunch_needed\""
        );
    }
}
