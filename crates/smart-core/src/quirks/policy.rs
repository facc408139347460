//! [`VendorPolicy`]: the vendor differences that are values, not behaviour.
//!
//! Some departures from the specification are a number or a choice that never depends on the
//! request: how Basic credentials are encoded, how long a client assertion lives, how often a
//! server tolerates a refresh, which signature algorithms its `id_token`s use. Keeping them as
//! data (one struct an adapter returns) instead of four trait methods makes them visible at a
//! glance, comparable between adapters, and printable by tools.
//!
//! [`VendorPolicy::retry_bare_token_400`] is a choice of that kind too: whether a token request
//! answered by a bare `400` (no OAuth error body, as Epic servers now and then send) is sent once
//! more. What counts as bare is [`VendorPolicy::is_bare_token_400`], shared by every caller so
//! that the backend and `jwt-bearer` paths cannot disagree.

use std::time::Duration;

use crate::protocol::{ASSERTION_LIFETIME, BasicAuthEncoding, DEFAULT_ID_TOKEN_ALGORITHMS};

/// A vendor's fixed values: the departures from the specification that are a number or a choice
/// independent of the request, kept as data so that adapters can be compared and tools can print
/// them.
///
/// Start from [`VendorPolicy::SPEC`] and change what differs, in a `const`:
///
/// ```
/// use std::time::Duration;
/// use smart_core::quirks::{BasicAuthEncoding, VendorPolicy};
///
/// const ACME: VendorPolicy = VendorPolicy::SPEC
///     .with_min_refresh_interval(Duration::from_secs(60))
///     .with_basic_auth_encoding(BasicAuthEncoding::Raw);
/// assert_eq!(ACME.assertion_lifetime, VendorPolicy::SPEC.assertion_lifetime);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VendorPolicy {
    /// How `client_secret_basic` credentials are encoded. Spec: RFC 6749 §2.3.1 form-urlencoding.
    pub basic_auth_encoding: BasicAuthEncoding,
    /// Lifetime of `private_key_jwt` client assertions. Spec: at most 5 minutes; 4 by default.
    pub assertion_lifetime: Duration,
    /// The shortest time between two refreshes of one session that the server tolerates; a
    /// proactive refresh waits until it has passed. Spec: none.
    pub min_refresh_interval: Duration,
    /// The JWS algorithms accepted for `id_token` signatures. Spec: RS256 (required of servers)
    /// plus RS384, RS512, ES256 and ES384; never `none` or an HMAC.
    pub id_token_algorithms: &'static [smart_jose::Algorithm],
    /// Whether a token request answered by a bare `400` (see
    /// [`VendorPolicy::is_bare_token_400`]) is sent **once** more, after
    /// [`VendorPolicy::BARE_TOKEN_400_RETRY_DELAY`], with a new client assertion (new `jti`).
    /// Only for grants where a repeat is safe: `client_credentials` and the `jwt-bearer` grant,
    /// which spend nothing on the server. Never for `authorization_code` (the first request may
    /// have spent the single-use code, so a repeat would fail with `invalid_grant` and hide the
    /// real answer) nor for `refresh_token` (the first request may have rotated the refresh
    /// token, so a repeat with the old one could be refused or revoke the whole grant). Spec:
    /// `false`, a `400` is final.
    pub retry_bare_token_400: bool,
}

impl VendorPolicy {
    /// What SMART App Launch 2.2 says.
    pub const SPEC: VendorPolicy = VendorPolicy {
        basic_auth_encoding: BasicAuthEncoding::FormUrlEncoded,
        assertion_lifetime: ASSERTION_LIFETIME,
        min_refresh_interval: Duration::ZERO,
        id_token_algorithms: DEFAULT_ID_TOKEN_ALGORITHMS,
        retry_bare_token_400: false,
    };

    /// The pause before the one repeat under [`VendorPolicy::retry_bare_token_400`]: long
    /// enough for a load balancer to pick another node, short enough not to matter to a caller
    /// that waits for a token (at most one such pause per request, as there is one repeat).
    pub const BARE_TOKEN_400_RETRY_DELAY: Duration = Duration::from_millis(200);

    /// Whether a token-endpoint answer is a *bare* `400`: status 400 and a body that is not an
    /// OAuth error (a JSON object with a string `error` member), e.g. empty, HTML or other JSON.
    /// A 400 with an OAuth error is the server's real answer and is never repeated.
    ///
    /// ```
    /// use smart_core::quirks::VendorPolicy;
    ///
    /// assert!(VendorPolicy::is_bare_token_400(400, b""));
    /// assert!(VendorPolicy::is_bare_token_400(400, b"<html>Bad Request</html>"));
    /// assert!(!VendorPolicy::is_bare_token_400(400, br#"{"error":"invalid_grant"}"#));
    /// assert!(!VendorPolicy::is_bare_token_400(500, b""));
    /// ```
    pub fn is_bare_token_400(status: u16, body: &[u8]) -> bool {
        if status != 400 {
            return false;
        }
        // The body was read under the HTTP client's size cap; parsing is linear.
        let oauth_error = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| v.get("error").is_some_and(serde_json::Value::is_string));
        !oauth_error
    }

    /// With another Basic encoding.
    pub const fn with_basic_auth_encoding(mut self, encoding: BasicAuthEncoding) -> Self {
        self.basic_auth_encoding = encoding;
        self
    }

    /// With another assertion lifetime.
    pub const fn with_assertion_lifetime(mut self, lifetime: Duration) -> Self {
        self.assertion_lifetime = lifetime;
        self
    }

    /// With a minimum refresh interval.
    pub const fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// With other `id_token` algorithms.
    pub const fn with_id_token_algorithms(
        mut self,
        algorithms: &'static [smart_jose::Algorithm],
    ) -> Self {
        self.id_token_algorithms = algorithms;
        self
    }

    /// With (or without) one repeat of a `client_credentials` or `jwt-bearer` token request
    /// answered by a bare `400`.
    pub const fn with_retry_bare_token_400(mut self, retry: bool) -> Self {
        self.retry_bare_token_400 = retry;
        self
    }
}

impl Default for VendorPolicy {
    fn default() -> Self {
        VendorPolicy::SPEC
    }
}

/// A field of [`VendorPolicy`], as data, for catalogue entries that a policy value handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PolicyField {
    /// [`VendorPolicy::basic_auth_encoding`]
    BasicAuthEncoding,
    /// [`VendorPolicy::assertion_lifetime`]
    AssertionLifetime,
    /// [`VendorPolicy::min_refresh_interval`]
    MinRefreshInterval,
    /// [`VendorPolicy::id_token_algorithms`]
    IdTokenAlgorithms,
    /// [`VendorPolicy::retry_bare_token_400`]
    RetryBareToken400,
}

impl PolicyField {
    /// Every field.
    pub const ALL: &'static [PolicyField] = &[
        PolicyField::BasicAuthEncoding,
        PolicyField::AssertionLifetime,
        PolicyField::MinRefreshInterval,
        PolicyField::IdTokenAlgorithms,
        PolicyField::RetryBareToken400,
    ];

    /// The struct field's name.
    pub fn field(self) -> &'static str {
        match self {
            PolicyField::BasicAuthEncoding => "basic_auth_encoding",
            PolicyField::AssertionLifetime => "assertion_lifetime",
            PolicyField::MinRefreshInterval => "min_refresh_interval",
            PolicyField::IdTokenAlgorithms => "id_token_algorithms",
            PolicyField::RetryBareToken400 => "retry_bare_token_400",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_never_repeats_a_token_request() {
        let spec = VendorPolicy::default();
        assert!(!spec.retry_bare_token_400);
        let retrying = spec.with_retry_bare_token_400(true);
        assert!(retrying.retry_bare_token_400);
        assert_eq!(
            retrying.with_retry_bare_token_400(false),
            spec,
            "the builder changes that one field only"
        );
    }

    #[test]
    fn only_a_400_without_an_oauth_error_is_bare() {
        for bare in [
            &b""[..],
            b"Bad Request",
            b"<html><body>400</body></html>",
            b"{}",
            br#"{"error": 7}"#,
            br#"{"message":"bad"}"#,
            b"[\"error\"]",
            b"\xff\xfe{",
        ] {
            assert!(
                VendorPolicy::is_bare_token_400(400, bare),
                "{}",
                String::from_utf8_lossy(bare)
            );
        }
        assert!(!VendorPolicy::is_bare_token_400(
            400,
            br#"{"error":"invalid_client","error_description":"x"}"#
        ));
        for status in [200, 401, 403, 500, 503] {
            assert!(!VendorPolicy::is_bare_token_400(status, b""), "{status}");
        }
    }

    #[test]
    fn hostile_bodies_are_read_without_panicking() {
        let deep = "[".repeat(100_000);
        assert!(VendorPolicy::is_bare_token_400(400, deep.as_bytes()));
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(1 << 20));
        assert!(!VendorPolicy::is_bare_token_400(400, long.as_bytes()));
    }
}
