//! [`VendorPolicy`]: the vendor differences that are values, not behaviour.
//!
//! Some departures from the specification are a number or a choice that never depends on the
//! request: how Basic credentials are encoded, how long a client assertion lives, how often a
//! server tolerates a refresh, which signature algorithms its `id_token`s use. Keeping them as
//! data (one struct an adapter returns) instead of four trait methods makes them visible at a
//! glance, comparable between adapters, and printable by tools.

use std::time::Duration;

use crate::protocol::{ASSERTION_LIFETIME, BasicAuthEncoding, DEFAULT_ID_TOKEN_ALGORITHMS};

/// A vendor's fixed values (see the [module documentation](self)).
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
}

impl VendorPolicy {
    /// What SMART App Launch 2.2 says.
    pub const SPEC: VendorPolicy = VendorPolicy {
        basic_auth_encoding: BasicAuthEncoding::FormUrlEncoded,
        assertion_lifetime: ASSERTION_LIFETIME,
        min_refresh_interval: Duration::ZERO,
        id_token_algorithms: DEFAULT_ID_TOKEN_ALGORITHMS,
    };

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
}

impl PolicyField {
    /// Every field.
    pub const ALL: &'static [PolicyField] = &[
        PolicyField::BasicAuthEncoding,
        PolicyField::AssertionLifetime,
        PolicyField::MinRefreshInterval,
        PolicyField::IdTokenAlgorithms,
    ];

    /// The struct field's name.
    pub fn field(self) -> &'static str {
        match self {
            PolicyField::BasicAuthEncoding => "basic_auth_encoding",
            PolicyField::AssertionLifetime => "assertion_lifetime",
            PolicyField::MinRefreshInterval => "min_refresh_interval",
            PolicyField::IdTokenAlgorithms => "id_token_algorithms",
        }
    }
}
