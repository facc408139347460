//! Oracle Health's launch-context extras, typed where a vendor document backs them.
//!
//! The core keeps every token-response field it does not model in [`LaunchContext::extras`].
//! Oracle Health documents one of them, `active_ttl` (Active User Presence), which
//! [`CernerContext`] reads. Fields seen only in unattributed client code (`user`, `username`)
//! are deliberately **not** typed: a type would promise a field no vendor text describes, so they
//! stay in `extras` for an app that wants to try them.

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
/// context.extras.insert("active_ttl".into(), json!(900));
/// context.extras.insert("username".into(), json!("portal"));
///
/// let cerner = CernerContext::from_context(&context);
/// assert_eq!(cerner.active_ttl, Some(Duration::from_secs(900)));
/// // Undocumented fields stay untyped extras.
/// assert_eq!(context.extras["username"], "portal");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CernerContext {
    /// How long the user's session counts as active without activity (`active_ttl`, Active User
    /// Presence; sent with `online_access`). Report the user's activity on refresh
    /// (`RefreshOptions::user_active_at`) to keep the session from lapsing.
    pub active_ttl: Option<Duration>,
}

impl CernerContext {
    /// Reads the Oracle Health extras of a parsed launch context.
    ///
    /// Quirk `cerner-active-user-presence` (§5 row 29; Oracle Health Active User Presence
    /// documentation, Documented): `active_ttl`, whole seconds as a number or a numeric string.
    ///
    /// Quirk `cerner-context-extras` (§5 row 30; unattributed client code only, unverified):
    /// `user`, `username` and `tenant` are not read here; they stay in
    /// [`LaunchContext::extras`] untyped.
    pub fn from_context(context: &LaunchContext) -> Self {
        Self::from_extras(&context.extras)
    }

    /// Reads the Oracle Health extras from a launch context's `extras` map.
    pub fn from_extras(extras: &Map<String, Value>) -> Self {
        CernerContext {
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
        // Unverified fields are not typed (nothing reads them), and stay available untyped.
        let c = context(json!({"user": "12345", "username": "portal", "tenant": "t"}));
        assert_eq!(CernerContext::from_context(&c), CernerContext::default());
        assert_eq!(c.extras["user"], "12345");
        assert_eq!(c.extras["username"], "portal");
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
