//! Protocol strings as types: [`AdapterName`] (with an explicit [`AdapterName::Auto`]) and
//! [`LaunchState`] (a credential, redacted).
//!
//! A bare `String` says nothing about what it holds or how it may be printed. These types say
//! both: an adapter name is either "detect" or one installed adapter, never a magic string to
//! compare against; a `state` value is a single-use CSRF credential, so `Debug` and `Display`
//! never show it. A leaf module, so that configuration, the store and the client can all use the
//! types without importing each other.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::adapter_choice::AUTO_ADAPTER;

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
