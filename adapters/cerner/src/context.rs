//! Oracle Health's launch-context extras, typed.
//!
//! The core keeps every token-response field it does not model in [`LaunchContext::extras`]
//! (`tenant` it already types). Oracle Health adds the signed-in user and, with Active User
//! Presence, how long the session stays active; [`CernerContext`] reads them.

use std::time::Duration;

use serde_json::{Map, Value};
use smart_core::LaunchContext;

/// The Oracle Health-specific launch context of a token response.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use smart_adapter_cerner::CernerContext;
/// use smart_core::LaunchContext;
///
/// let mut context = LaunchContext::default();
/// context.extras.insert("user".into(), json!("12345"));
/// context.extras.insert("username".into(), json!("portal"));
/// context.extras.insert("active_ttl".into(), json!(900));
///
/// let cerner = CernerContext::from_context(&context);
/// assert_eq!(cerner.username.as_deref(), Some("portal"));
/// assert_eq!(cerner.active_ttl, Some(Duration::from_secs(900)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CernerContext {
    /// The signed-in user's Millennium ID (`user`).
    pub user: Option<String>,
    /// The signed-in user's login name (`username`).
    pub username: Option<String>,
    /// How long the user's session counts as active without activity (`active_ttl`, Active User
    /// Presence; sent with `online_access`).
    pub active_ttl: Option<Duration>,
}

impl CernerContext {
    /// Reads the Oracle Health extras of a parsed launch context.
    ///
    /// Quirk `cerner-context-extras` (§5 row 30; a token-response interface in client code,
    /// Captured): `user` (string or number) and `username`.
    ///
    /// Quirk `cerner-active-user-presence` (§5 row 29; Oracle Health Active User Presence
    /// documentation, Documented): `active_ttl`, whole seconds as a number or a numeric string.
    pub fn from_context(context: &LaunchContext) -> Self {
        Self::from_extras(&context.extras)
    }

    /// Reads the Oracle Health extras from a launch context's `extras` map.
    pub fn from_extras(extras: &Map<String, Value>) -> Self {
        CernerContext {
            user: match extras.get("user") {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
            username: extras
                .get("username")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            active_ttl: match extras.get("active_ttl") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .map(Duration::from_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use smart_core::LaunchContext;

    use super::CernerContext;

    fn context(extras: serde_json::Value) -> LaunchContext {
        let mut c = LaunchContext::default();
        if let serde_json::Value::Object(m) = extras {
            c.extras = m;
        }
        c
    }

    #[test]
    fn cerner_context_extras() {
        let c =
            CernerContext::from_context(&context(json!({"user": "12345", "username": "portal"})));
        assert_eq!(c.user.as_deref(), Some("12345"));
        assert_eq!(c.username.as_deref(), Some("portal"));
        let c = CernerContext::from_context(&context(json!({"user": 12345})));
        assert_eq!(c.user.as_deref(), Some("12345"));
        assert_eq!(
            CernerContext::from_context(&context(json!({"user": ["x"], "username": 5}))),
            CernerContext::default()
        );
    }

    #[test]
    fn cerner_active_user_presence() {
        let c = CernerContext::from_context(&context(json!({"active_ttl": 900})));
        assert_eq!(c.active_ttl, Some(Duration::from_secs(900)));
        let c = CernerContext::from_context(&context(json!({"active_ttl": "600"})));
        assert_eq!(c.active_ttl, Some(Duration::from_secs(600)));
        let c = CernerContext::from_context(&context(json!({"active_ttl": -1})));
        assert_eq!(c.active_ttl, None);
    }
}
