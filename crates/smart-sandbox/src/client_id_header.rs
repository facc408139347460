//! The vendor client-ID header (Epic's `Epic-Client-ID`).
//!
//! Epic lets an app name its client ID in an `Epic-Client-ID` request header
//! on discovery, OAuth and FHIR calls, so that a customer can answer with
//! endpoints configured for that client; an app that sends the wrong ID (its
//! production ID to a non-production server, say) can be given the wrong
//! endpoints. A profile that sets
//! [`VendorProfile::client_id_header`](crate::VendorProfile::client_id_header)
//! makes the sandbox check that header wherever it appears: its value must
//! name a registered client, otherwise the request is refused with a 400
//! before any other check. Every value seen is recorded with the kind of
//! endpoint it reached, so a test can assert that a client sent its own ID
//! where it should ([`Sandbox::client_id_headers_seen`](crate::Sandbox::client_id_headers_seen)).
//!
//! This module holds the vocabulary (which [`Endpoint`] a path is) and the
//! log ([`ClientIdHeaderLog`]); the check itself is one middleware in
//! `server.rs`, so the handlers know nothing about it.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::locks::lock;
use crate::profile::Urls;

/// How many header values [`ClientIdHeaderLog`] keeps; older ones are
/// dropped first, so a long-running sandbox does not grow without bound.
pub(crate) const MAX_RECORDED_VALUES: usize = 1024;

/// The longest header value accepted (and recorded); client IDs are short.
pub(crate) const MAX_VALUE_CHARS: usize = 256;

/// The kind of endpoint a request reached, as recorded for the vendor
/// client-ID header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `.well-known/smart-configuration`, `.well-known/openid-configuration`
    /// or `metadata`.
    Discovery,
    /// The authorization endpoint.
    Authorize,
    /// The token endpoint.
    Token,
    /// The token introspection endpoint.
    Introspection,
    /// The dynamic client registration endpoint (profiles that have one).
    Registration,
    /// The FHIR API (anything else under the FHIR base).
    Fhir,
}

impl Endpoint {
    /// The kind of `path` under the sandbox's URLs, or `None` for a path the
    /// header is not checked on (the JWKS, `/sandbox/…`, the index page).
    pub(crate) fn of(urls: &Urls, path: &str) -> Option<Endpoint> {
        if path == urls.smart_configuration_path()
            || path == urls.metadata_path()
            || urls.openid_configuration_paths.iter().any(|p| p == path)
            || path == format!("{}/.well-known/openid-configuration", urls.fhir_path)
        {
            return Some(Endpoint::Discovery);
        }
        if path == urls.authorize_path {
            return Some(Endpoint::Authorize);
        }
        if path == urls.token_path {
            return Some(Endpoint::Token);
        }
        if path == urls.introspection_path {
            return Some(Endpoint::Introspection);
        }
        if urls.registration_path.as_deref() == Some(path) {
            return Some(Endpoint::Registration);
        }
        let under_fhir = path == urls.fhir_path
            || path
                .strip_prefix(urls.fhir_path.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        under_fhir.then_some(Endpoint::Fhir)
    }
}

/// The client-ID header values the sandbox has seen, oldest first.
#[derive(Default)]
pub(crate) struct ClientIdHeaderLog {
    seen: Mutex<VecDeque<(Endpoint, String)>>,
}

impl ClientIdHeaderLog {
    pub(crate) fn record(&self, endpoint: Endpoint, value: String) {
        let mut seen = lock(&self.seen);
        if seen.len() >= MAX_RECORDED_VALUES {
            seen.pop_front();
        }
        seen.push_back((endpoint, value));
    }

    /// Every recorded value, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<(Endpoint, String)> {
        lock(&self.seen).iter().cloned().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::VendorProfile;

    #[test]
    fn endpoints_are_classified_by_the_profile_paths() {
        let urls = VendorProfile::builtin("epic")
            .unwrap()
            .resolve("http://127.0.0.1:1")
            .unwrap();
        let fhir = urls.fhir_path.clone();
        let cases = [
            (
                format!("{fhir}/.well-known/smart-configuration"),
                Some(Endpoint::Discovery),
            ),
            (format!("{fhir}/metadata"), Some(Endpoint::Discovery)),
            (format!("{fhir}/Patient/pat-1"), Some(Endpoint::Fhir)),
            (fhir.clone(), Some(Endpoint::Fhir)),
            (format!("{fhir}x"), None),
            (urls.authorize_path.clone(), Some(Endpoint::Authorize)),
            (urls.token_path.clone(), Some(Endpoint::Token)),
            (
                urls.introspection_path.clone(),
                Some(Endpoint::Introspection),
            ),
            (urls.jwks_path.clone(), None),
            ("/sandbox/launch".to_owned(), None),
        ];
        for (path, expected) in cases {
            assert_eq!(Endpoint::of(&urls, &path), expected, "{path}");
        }
    }

    #[test]
    fn the_log_is_bounded_and_keeps_the_newest() {
        let log = ClientIdHeaderLog::default();
        for i in 0..MAX_RECORDED_VALUES + 5 {
            log.record(Endpoint::Fhir, i.to_string());
        }
        let seen = log.snapshot();
        assert_eq!(seen.len(), MAX_RECORDED_VALUES);
        assert_eq!(seen[0].1, "5");
        assert_eq!(
            seen.last().unwrap().1,
            (MAX_RECORDED_VALUES + 4).to_string()
        );
    }
}
