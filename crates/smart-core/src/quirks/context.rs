//! [`HookContext`]: what a vendor hook knows about the call it is part of.
//!
//! Every behaviour hook receives one context instead of an ad-hoc list of arguments, so that a
//! hook can grow to need the registration (Epic's per-registration client ID), the launch kind or
//! the grant without a signature change across every adapter. Fields the current step does not
//! know are `None`: discovery run for a bare FHIR base has no registration, an authorization
//! request has no grant, a FHIR call made with a backend token has no launch kind.

use url::Url;

use crate::config::ClientRegistration;
use crate::protocol::{LaunchKind, TokenGrant};

/// The context of one hook call: the registration, client id, FHIR base, launch kind and grant
/// the step knows (`None` for what it does not), so that a hook can depend on any of them without
/// a signature change across every adapter.
///
/// Built by the core; adapters read it. Construct one in an adapter's unit tests with
/// [`HookContext::new`] and the `with_*` methods:
///
/// ```
/// use smart_core::quirks::{HookContext, LaunchKind};
///
/// let ctx = HookContext::new("https://fhir.example.org/r4")
///     .with_client_id("my-app")
///     .with_launch_kind(LaunchKind::Standalone);
/// assert_eq!(ctx.client_id(), Some("my-app"));
/// assert!(ctx.registration().is_none());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HookContext<'a> {
    fhir_base: &'a str,
    registration_name: Option<&'a str>,
    registration: Option<&'a ClientRegistration>,
    client_id: Option<&'a str>,
    launch_kind: Option<LaunchKind>,
    grant: Option<TokenGrant>,
}

impl<'a> HookContext<'a> {
    /// A context that knows only the FHIR base.
    pub fn new(fhir_base: &'a str) -> Self {
        HookContext {
            fhir_base,
            registration_name: None,
            registration: None,
            client_id: None,
            launch_kind: None,
            grant: None,
        }
    }

    /// Adds the registration (named `name` in the configuration) and its client id.
    pub fn with_registration(
        mut self,
        name: &'a str,
        registration: &'a ClientRegistration,
    ) -> Self {
        self.registration_name = Some(name);
        self.registration = Some(registration);
        self.client_id = Some(registration.client_id.as_str());
        self
    }

    /// Sets the client id (when no registration is at hand, e.g. a FHIR call from a session).
    pub fn with_client_id(mut self, client_id: &'a str) -> Self {
        self.client_id = Some(client_id);
        self
    }

    /// Sets the launch kind.
    pub fn with_launch_kind(mut self, kind: LaunchKind) -> Self {
        self.launch_kind = Some(kind);
        self
    }

    /// Sets the token grant.
    pub fn with_grant(mut self, grant: TokenGrant) -> Self {
        self.grant = Some(grant);
        self
    }

    /// The FHIR base (the launch's `iss`, or the base a backend token is for), byte for byte as
    /// the launch or registration gave it.
    pub fn fhir_base(&self) -> &'a str {
        self.fhir_base
    }

    /// The FHIR base parsed, for hooks that look at its host or path. `None` if it does not
    /// parse (the core validates bases before any hook runs, so only hand-built contexts).
    pub fn fhir_base_url(&self) -> Option<Url> {
        Url::parse(self.fhir_base).ok()
    }

    /// The registration's name in the configuration (`[clients.<name>]`), when known.
    pub fn registration_name(&self) -> Option<&'a str> {
        self.registration_name
    }

    /// The registration that covers this FHIR base, when known.
    pub fn registration(&self) -> Option<&'a ClientRegistration> {
        self.registration
    }

    /// The client id the EHR assigned, when known.
    pub fn client_id(&self) -> Option<&'a str> {
        self.client_id
    }

    /// The kind of launch, in the authorization and launch-token steps.
    pub fn launch_kind(&self) -> Option<LaunchKind> {
        self.launch_kind
    }

    /// The grant, in token-endpoint steps.
    pub fn grant(&self) -> Option<TokenGrant> {
        self.grant
    }
}
