//! Which vendor adapter serves a launch, and why: [`AdapterChoice`].
//!
//! The adapter is decided once, when a launch begins, and the decision is stored with the
//! pending launch and then the session. Every later step (callback, refresh, bearer tokens) reads
//! the recorded choice instead of deciding again, so that a callback landing on another instance
//! of the app, or a refresh days later, uses the same vendor behaviour without any network call,
//! and so that operators can see in the stored session what was chosen and on what evidence.
//!
//! A leaf module: the store records the choice and the client makes it, and neither imports the
//! other for the type.

use serde::{Deserialize, Serialize};

/// The registration adapter value that asks for detection among the installed adapters.
pub const AUTO_ADAPTER: &str = "auto";

/// The name of the spec-exact adapter built into the core (and of the `smart-adapter-generic`
/// crate's adapter, which an app may install in its place).
pub const SPEC_ADAPTER: &str = "generic";

/// Which adapter was chosen for a server, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AdapterChoice {
    /// The adapter's registry name.
    pub adapter: String,
    /// The evidence (e.g. "CapabilityStatement publisher is Epic Systems Corporation"), or why
    /// no evidence was needed (the registration names the adapter).
    pub reason: String,
    /// Whether the choice came from detection (`adapter = "auto"`) rather than the registration.
    #[serde(default)]
    pub detected: bool,
}

impl AdapterChoice {
    /// The adapter a registration names.
    pub fn named(adapter: impl Into<String>, registration: &str) -> Self {
        AdapterChoice {
            adapter: adapter.into(),
            reason: format!("named by registration `{registration}`"),
            detected: false,
        }
    }

    /// An adapter chosen by detection, with its evidence.
    pub fn detected(adapter: impl Into<String>, reason: impl Into<String>) -> Self {
        AdapterChoice {
            adapter: adapter.into(),
            reason: reason.into(),
            detected: true,
        }
    }
}
