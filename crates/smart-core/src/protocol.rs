//! The protocol's small vocabulary: which kind of launch, how the authorization request travels,
//! how Basic credentials are encoded, which grant a token request is for.
//!
//! These are words every layer uses (configuration, vendor hooks, client authentication, the
//! store, the launch flow). They live in this leaf module, which depends on nothing else in the
//! crate, so that no two of those modules have to import each other for a type name.

/// How a launch reaches the authorization endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizeMethod {
    /// A redirect with the parameters in the query string.
    Get,
    /// An auto-submitting form (`application/x-www-form-urlencoded`).
    Post,
}

/// Which kind of launch a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchKind {
    /// Launched from inside an EHR session, with `iss` and `launch`.
    Ehr,
    /// Launched by the app itself.
    Standalone,
}

/// How `client_id` and `client_secret` are turned into an HTTP Basic credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicAuthEncoding {
    /// RFC 6749 §2.3.1: each part `application/x-www-form-urlencoded` before base64.
    FormUrlEncoded,
    /// The parts as they are (for servers that do not decode them).
    Raw,
}

/// The context of a token-endpoint call, for hooks that behave differently per grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenGrant {
    /// `authorization_code`
    AuthorizationCode,
    /// `refresh_token`
    RefreshToken,
    /// `client_credentials` (backend services)
    ClientCredentials,
}
