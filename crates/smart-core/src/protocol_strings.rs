//! Protocol strings as types: [`FhirBase`], [`IssuerPattern`], [`ClientId`], [`RedirectUri`],
//! [`AdapterName`] (with an explicit [`AdapterName::Auto`]) and [`LaunchState`] (a credential,
//! redacted).
//!
//! A bare `String` says nothing about what it holds or how it may be printed. These types say
//! both: a FHIR base cannot be passed where a client id is expected (both are "a string" to the
//! compiler otherwise, and a swapped pair type-checks and fails at the server); an adapter name
//! is either "detect" or one installed adapter, never a magic string to compare against; a
//! `state` value is a single-use CSRF credential, so `Debug` and `Display` never show it.
//!
//! The URL-like types keep their text **byte for byte**: SMART compares `aud`, `iss` and
//! `redirect_uri` as exact strings, so nothing here normalises (no trailing-slash trimming, no
//! case folding). They dereference to `str`, compare with string types and serialise as plain
//! strings, so stored sessions and configuration files keep their format.
//!
//! A leaf module, so that configuration, the store and the client can all use the types without
//! importing each other.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::adapter_choice::AUTO_ADAPTER;

/// Defines a transparent string newtype: `Deref<Target = str>`, `Display` as the text,
/// conversions from and into `String`, comparisons with `str`, `&str` and `String` both ways,
/// and serde as a plain string.
macro_rules! string_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps the text, unchanged.
            pub fn new(text: impl Into<String>) -> Self {
                $name(text.into())
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name(text)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(text.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(text: &String) -> Self {
                $name(text.clone())
            }
        }

        impl From<&$name> for $name {
            fn from(value: &$name) -> Self {
                value.clone()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

string_type! {
    /// A FHIR server's base URL, byte for byte: the `aud` of an authorization request, the `iss`
    /// of an EHR launch, the only place a session's tokens are ever sent.
    ///
    /// ```
    /// use smart_core::FhirBase;
    ///
    /// let base = FhirBase::new("https://ehr.example/fhir/R4");
    /// assert_eq!(base, "https://ehr.example/fhir/R4");
    /// assert!(base.starts_with("https://")); // a `str` method, through `Deref`
    /// ```
    FhirBase
}

string_type! {
    /// The client id an authorization server assigned to the app (not a secret, but an identity:
    /// it decides which registration, keys and vendor settings apply).
    ///
    /// ```
    /// use smart_core::ClientId;
    ///
    /// let id: ClientId = "my-app".into();
    /// assert_eq!(id.as_str(), "my-app");
    /// ```
    ClientId
}

string_type! {
    /// A registered `redirect_uri`, sent byte for byte (the code exchange must repeat exactly the
    /// value the authorization request carried).
    ///
    /// ```
    /// use smart_core::RedirectUri;
    ///
    /// let uri = RedirectUri::new("http://127.0.0.1:8080/callback");
    /// assert_eq!(uri.to_string(), "http://127.0.0.1:8080/callback");
    /// ```
    RedirectUri
}

string_type! {
    /// Which FHIR bases a registration covers: one base byte for byte, or a pattern in which `*`
    /// stands for a run of letters, digits, `-`, `_` or `~` inside one host label or path segment
    /// (e.g. one tenant id). [`matches`](IssuerPattern::matches) runs in time linear in the
    /// length of the candidate for each `*`-free stretch (no backtracking blow-up on hostile
    /// `iss` values).
    ///
    /// ```
    /// use smart_core::IssuerPattern;
    ///
    /// let tenants = IssuerPattern::new("https://fhir.example/r4/*");
    /// assert!(tenants.matches("https://fhir.example/r4/tenant-1"));
    /// assert!(!tenants.matches("https://fhir.example/r4/a/b"));
    /// assert!(IssuerPattern::new("https://one.example/fhir").matches("https://one.example/fhir"));
    /// ```
    IssuerPattern
}

impl IssuerPattern {
    /// Whether the text holds a `*`.
    pub fn is_pattern(&self) -> bool {
        self.0.contains('*')
    }

    /// Whether `iss` is covered: equal to the text, or matched by the `*` pattern.
    pub fn matches(&self, iss: &str) -> bool {
        if !self.is_pattern() {
            return self.0 == iss;
        }
        wildcard_match(self.0.as_bytes(), iss.as_bytes())
    }
}

/// A byte a `*` may stand for: one that cannot change which host or path is meant.
fn wildcard_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'~')
}

/// Glob matching where `*` stands for one or more [`wildcard_byte`]s, as a simulation of the
/// pattern's automaton: the set of pattern positions reachable after each text byte is kept, so
/// the cost is `O(pattern × text)` whatever the input — never the exponential backtracking of
/// the recursive form on inputs such as `*-*-*-*` against a long run of letters.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    // `states[i]`: the first `i` pattern bytes have matched the text read so far. A `*` at
    // pattern index `j` is "open" in state `j + 1` once it has taken at least one byte.
    let mut states = vec![false; pattern.len() + 1];
    let mut next = vec![false; pattern.len() + 1];
    states[0] = true;
    for &c in text {
        next.iter_mut().for_each(|s| *s = false);
        let mut any = false;
        for (i, &p) in pattern.iter().enumerate() {
            let star = p == b'*';
            // Take `c` with pattern byte `i` (a literal, or the first byte of a `*`).
            if states[i] && ((star && wildcard_byte(c)) || (!star && p == c)) {
                next[i + 1] = true;
                any = true;
            }
            // A `*` that already took bytes takes one more.
            if star && states[i + 1] && wildcard_byte(c) {
                next[i + 1] = true;
                any = true;
            }
        }
        if !any {
            return false;
        }
        std::mem::swap(&mut states, &mut next);
    }
    states[pattern.len()]
}

/// Which vendor adapter a registration uses: detection among the installed adapters, or one by
/// name.
///
/// Written in configuration as a string: `adapter = "auto"` (the default) or `adapter = "epic"`.
///
/// ```
/// use smart_core::AdapterName;
///
/// assert_eq!(AdapterName::from("auto"), AdapterName::Auto);
/// assert_eq!(AdapterName::from("epic").to_string(), "epic");
/// assert!(AdapterName::default().is_auto());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum AdapterName {
    /// Decide when a launch begins, from the server's URL, SMART configuration and
    /// CapabilityStatement (`auto`).
    #[default]
    Auto,
    /// The installed adapter with this registry name.
    Named(String),
}

impl AdapterName {
    /// Whether this asks for detection.
    pub fn is_auto(&self) -> bool {
        matches!(self, AdapterName::Auto)
    }

    /// The configured spelling: `auto` or the adapter's name.
    pub fn as_str(&self) -> &str {
        match self {
            AdapterName::Auto => AUTO_ADAPTER,
            AdapterName::Named(name) => name,
        }
    }

    /// The adapter's name, unless this asks for detection.
    pub fn named(&self) -> Option<&str> {
        match self {
            AdapterName::Auto => None,
            AdapterName::Named(name) => Some(name),
        }
    }
}

impl From<&str> for AdapterName {
    fn from(name: &str) -> Self {
        if name == AUTO_ADAPTER {
            AdapterName::Auto
        } else {
            AdapterName::Named(name.to_owned())
        }
    }
}

impl From<String> for AdapterName {
    fn from(name: String) -> Self {
        if name == AUTO_ADAPTER {
            AdapterName::Auto
        } else {
            AdapterName::Named(name)
        }
    }
}

impl From<&String> for AdapterName {
    fn from(name: &String) -> Self {
        AdapterName::from(name.as_str())
    }
}

impl From<AdapterName> for String {
    fn from(name: AdapterName) -> Self {
        match name {
            AdapterName::Auto => AUTO_ADAPTER.to_owned(),
            AdapterName::Named(name) => name,
        }
    }
}

impl fmt::Display for AdapterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for AdapterName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for AdapterName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The `state` of an authorization request: a single-use value that binds the redirect back to
/// the pending launch. It is a credential (whoever holds it can complete the launch with a stolen
/// code), so `Debug` and `Display` never show it; [`LaunchState::expose`] gives the value.
///
/// ```
/// use smart_core::LaunchState;
///
/// let state = LaunchState::new("abc");
/// assert_eq!(state.expose(), "abc");
/// assert!(!format!("{state:?} {state}").contains("abc"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LaunchState(String);

impl LaunchState {
    /// Wraps a `state` value.
    pub fn new(state: impl Into<String>) -> Self {
        LaunchState(state.into())
    }

    /// The value, to put in the authorization URL or compare with a callback's.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LaunchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LaunchState([redacted])")
    }
}

impl fmt::Display for LaunchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[state redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_stay_inside_one_label_or_segment() {
        let p = IssuerPattern::new("https://*.ehr.example/fhir/*/r4");
        assert!(p.matches("https://tenant-1.ehr.example/fhir/abc_9/r4"));
        assert!(!p.matches("https://a.b.ehr.example/fhir/abc/r4"), "a dot");
        assert!(!p.matches("https://.ehr.example/fhir/abc/r4"), "empty run");
        assert!(!p.matches("https://x.ehr.example/fhir/a/b/r4"), "a slash");
        assert!(
            !p.matches("https://x.ehr.example/fhir/a%2Fb/r4"),
            "a percent"
        );
        assert!(
            !p.matches("https://x.ehr.example/fhir/abc/r4/"),
            "trailing text"
        );
        assert!(IssuerPattern::new("https://a-*-b").matches("https://a-x-y-b"));
        assert!(!IssuerPattern::new("https://a-*-b").matches("https://a--b"));
    }

    /// Many stars against a long run of bytes they all accept: the recursive matcher this
    /// replaced took time exponential in the number of stars here; the automaton answers
    /// at once.
    #[test]
    fn wildcard_matching_has_no_backtracking_blow_up() {
        let pattern = IssuerPattern::new(format!("https://{}!", "*-".repeat(12)));
        let hostile = format!("https://{}", "a-".repeat(5_000));
        let started = std::time::Instant::now();
        assert!(!pattern.matches(&hostile));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn string_types_compare_and_serialise_as_their_text() {
        let base = FhirBase::new("https://ehr.example/fhir");
        assert_eq!(base, "https://ehr.example/fhir");
        assert_eq!("https://ehr.example/fhir", base);
        assert_eq!(
            serde_json::to_value(&base).expect("serialises"),
            serde_json::json!("https://ehr.example/fhir")
        );
        let back: FhirBase =
            serde_json::from_value(serde_json::json!("https://ehr.example/fhir")).expect("parses");
        assert_eq!(back, base);
        assert_eq!(format!("{base}"), "https://ehr.example/fhir");
    }

    #[test]
    fn adapter_name_round_trips_through_its_configured_spelling() {
        for (text, name) in [
            ("auto", AdapterName::Auto),
            ("epic", AdapterName::Named("epic".into())),
        ] {
            let parsed: AdapterName =
                serde_json::from_value(serde_json::json!(text)).expect("parses");
            assert_eq!(parsed, name);
            assert_eq!(
                serde_json::to_value(&name).expect("serializes"),
                serde_json::json!(text)
            );
        }
        assert_eq!(AdapterName::Named("epic".into()), "epic");
        assert_eq!(AdapterName::Auto.named(), None);
    }
}
