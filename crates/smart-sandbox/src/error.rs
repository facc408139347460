//! The public error type, in a leaf module so that every area can return it
//! without importing the crate root (which imports every area).

/// Errors from configuring or driving the sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The configuration is invalid; the message is one line saying what is
    /// wrong and how to fix it.
    #[error("{0}")]
    Config(String),
    /// The listening socket could not be bound.
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source}; pick another port or use 0 for a free one"
    )]
    Bind {
        /// The requested port.
        port: u16,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No client with this `client_id` is registered.
    #[error("unknown client_id {0:?}; register the client first")]
    UnknownClient(String),
    /// The requested patient is not one of the synthetic patients.
    #[error(
        "unknown patient {0:?}; the sandbox has pat-1 … pat-N, N = SandboxConfig::patient_count (300 by default)"
    )]
    UnknownPatient(String),
    /// The OpenID Connect signing key could not be generated.
    #[error("{0}")]
    Internal(String),
}
