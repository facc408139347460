//! Which vendor adapter serves a launch: the one the registration names, or, for
//! `adapter = "auto"`, the installed adapter that recognises the server.
//!
//! The decision is made once per launch ([`SmartClient::decide_adapter`], called when the launch
//! begins) and recorded as an [`AdapterChoice`] in the pending launch and the session; later
//! steps read the record ([`SmartClient::adapter_of`]). Successful detections are remembered per
//! FHIR base for the life of the client. A failed detection (the server could not be reached) is
//! remembered only for a short back-off, so that one network blip is not pinned for the life of
//! the process and a failing server is not asked again on every request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::ACCEPT;
use serde_json::Value;

use crate::adapter_choice::AdapterChoice;
use crate::config::ClientRegistration;
use crate::discovery::Discovered;
use crate::error::{ConfigError, DiscoveryError};
use crate::http::check_transport_security;
use crate::quirks::{HookContext, VendorQuirks};
use crate::server_text::escape_controls;

use super::SmartClient;

/// How long a failed detection is remembered before the server is asked again, by default.
pub const DEFAULT_DETECTION_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The most FHIR bases whose detection result is remembered.
pub(crate) const MAX_REMEMBERED_DETECTIONS: usize = 512;

/// What detection found for one FHIR base.
#[derive(Debug, Clone)]
pub(crate) enum Detection {
    /// An adapter, with its evidence.
    Chosen(AdapterChoice),
    /// Detection could not reach the server; retried once `retry_after` has passed since `at`.
    Failed {
        /// When it failed.
        at: Instant,
        /// The failure, for the error returned meanwhile.
        reason: String,
    },
}

/// Remembered detections, capped at [`MAX_REMEMBERED_DETECTIONS`].
#[derive(Debug, Default)]
pub(crate) struct Detections {
    by_base: std::sync::Mutex<HashMap<String, Detection>>,
}

impl Detections {
    fn get(&self, base: &str) -> Option<Detection> {
        self.lock().get(base).cloned()
    }

    fn put(&self, base: &str, detection: Detection) {
        let mut map = self.lock();
        if map.len() >= MAX_REMEMBERED_DETECTIONS && !map.contains_key(base) {
            // Failures go first; else any one entry (it is only a cache of evidence).
            let victim = map
                .iter()
                .find(|(_, d)| matches!(d, Detection::Failed { .. }))
                .or_else(|| map.iter().next())
                .map(|(k, _)| k.clone());
            if let Some(victim) = victim {
                map.remove(&victim);
            }
        }
        map.insert(base.to_owned(), detection);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Detection>> {
        self.by_base.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SmartClient {
    /// The adapter installed under `name` (the built-in spec adapter answers to
    /// [`SPEC_ADAPTER`](crate::SPEC_ADAPTER) unless an app installed its own).
    pub fn adapter_named(&self, name: &str) -> Result<&Arc<dyn VendorQuirks>, ConfigError> {
        self.inner
            .adapters
            .get(name)
            .ok_or_else(|| ConfigError::Invalid {
                field: "adapter".into(),
                message: format!(
                    "adapter `{}` is not installed (installed: {}); build with that adapter or fix the name",
                    escape_controls(name),
                    self.inner.adapter_order.join(", ")
                ),
            })
    }

    /// The adapter a recorded [`AdapterChoice`] names, as configured with the
    /// `adapter_options` of the registration called `registration`.
    pub fn adapter_of(
        &self,
        registration: &str,
        choice: &AdapterChoice,
    ) -> Result<Arc<dyn VendorQuirks>, ConfigError> {
        let key = (registration.to_owned(), choice.adapter.clone());
        match self.inner.configured.get(&key) {
            Some(configured) => Ok(configured.clone()),
            None => self.adapter_named(&choice.adapter).cloned(),
        }
    }

    /// The adapter a registration uses, without any network call: the one it names, or for
    /// `adapter = "auto"` the one already detected for its issuer, else the default adapter.
    /// Launches do not use this: they record their decision ([`SmartClient::decide_adapter`]).
    pub fn adapter_for(
        &self,
        registration: &ClientRegistration,
    ) -> Result<&Arc<dyn VendorQuirks>, ConfigError> {
        if let Some(named) = registration.adapter.named() {
            return self.adapter_named(named);
        }
        match self.inner.detections.get(&registration.issuer) {
            Some(Detection::Chosen(choice)) => self.adapter_named(&choice.adapter),
            _ => Ok(&self.inner.default_adapter),
        }
    }

    /// Decides the adapter for a launch (or another flow) of `registration` against `base`: the
    /// adapter the registration names, or for `adapter = "auto"` the detected one (remembered
    /// per base). A detection that fails is an error (the launch cannot go on without the server
    /// anyway) and is retried after a short back-off, never pinned.
    pub async fn decide_adapter(
        &self,
        registration_name: &str,
        registration: &ClientRegistration,
        base: &str,
    ) -> Result<AdapterChoice, DiscoveryError> {
        if let Some(named) = registration.adapter.named() {
            return Ok(AdapterChoice::named(named, registration_name));
        }
        self.detect_remembered(base).await
    }

    /// Detection for `base`, remembered: a success for the client's life, a failure for the
    /// back-off.
    pub(crate) async fn detect_remembered(
        &self,
        base: &str,
    ) -> Result<AdapterChoice, DiscoveryError> {
        match self.inner.detections.get(base) {
            Some(Detection::Chosen(choice)) => return Ok(choice),
            Some(Detection::Failed { at, reason }) => {
                let waited = at.elapsed();
                if waited < self.inner.detection_retry_after {
                    let retry_in = self.inner.detection_retry_after - waited;
                    return Err(DiscoveryError::RecentlyFailed {
                        base: base.to_owned(),
                        reason,
                        retry_in_secs: retry_in.as_secs().max(1),
                    });
                }
            }
            None => {}
        }
        match self.try_detect_adapter(base).await {
            Ok(choice) => {
                tracing::info!(
                    fhir_base = %base,
                    adapter = %choice.adapter,
                    reason = %choice.reason,
                    "vendor adapter chosen"
                );
                self.inner
                    .detections
                    .put(base, Detection::Chosen(choice.clone()));
                Ok(choice)
            }
            Err(e) => {
                // The caller gets the error; this only notes the back-off.
                tracing::debug!(fhir_base = %base, error = %e, "adapter detection failed; retried after a back-off");
                self.inner.detections.put(
                    base,
                    Detection::Failed {
                        at: Instant::now(),
                        reason: e.to_string(),
                    },
                );
                Err(e)
            }
        }
    }

    /// Picks the installed adapter that recognises the server at `fhir_base` — from its URL, its
    /// SMART configuration and its CapabilityStatement (software name, publisher) — and says
    /// why. The default adapter when none does, or when the server cannot be reached (the reason
    /// then says so). Nothing is remembered: launches use [`SmartClient::decide_adapter`].
    pub async fn detect_adapter(&self, fhir_base: &str) -> AdapterChoice {
        match self.try_detect_adapter(fhir_base).await {
            Ok(choice) => choice,
            Err(e) => AdapterChoice::detected(
                self.inner.default_adapter.name(),
                format!("discovery failed ({e}); no vendor evidence"),
            ),
        }
    }

    /// Detection proper; an error when the server's configuration cannot be discovered.
    async fn try_detect_adapter(&self, fhir_base: &str) -> Result<AdapterChoice, DiscoveryError> {
        let default = self.inner.default_adapter.name().to_owned();
        if self.inner.adapter_order.len() <= 1 {
            return Ok(AdapterChoice::detected(
                default,
                "only one adapter is installed, so there is nothing to detect",
            ));
        }
        url::Url::parse(fhir_base).map_err(|e| DiscoveryError::InvalidBase {
            base: fhir_base.to_owned(),
            reason: e.to_string(),
        })?;
        let ctx = HookContext::new(fhir_base);
        let discovered = self
            .discover_with(&*self.inner.default_adapter, &ctx)
            .await?;
        let statement = self.capability_statement(fhir_base).await;
        for name in &self.inner.adapter_order {
            let Some(adapter) = self.inner.adapters.get(name) else {
                continue;
            };
            if let Some(reason) =
                adapter.recognizes(&ctx, &discovered.configuration, statement.as_ref())
            {
                return Ok(AdapterChoice::detected(name.clone(), reason));
            }
        }
        Ok(AdapterChoice::detected(
            default,
            "no installed vendor adapter recognised the server; using the spec-exact default",
        ))
    }

    /// `GET {base}/metadata` as JSON, for adapter detection; `None` on any failure.
    async fn capability_statement(&self, fhir_base: &str) -> Option<Value> {
        let url = format!("{}/metadata", fhir_base.trim_end_matches('/'));
        check_transport_security(&url::Url::parse(&url).ok()?).ok()?;
        let request = http::Request::get(&url)
            .header(ACCEPT, "application/fhir+json, application/json")
            .body(Vec::new())
            .ok()?;
        let response = self.inner.http.execute(request).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        serde_json::from_slice(response.body()).ok()
    }

    /// Discovers (through the cache) the configuration of `fhir_base` with the adapter that
    /// serves it: the one the covering registration names, or the detected one (for
    /// `adapter = "auto"` registrations and bases no registration covers).
    pub async fn discover(&self, fhir_base: &str) -> Result<Arc<Discovered>, DiscoveryError> {
        let covering = self
            .registration_for(fhir_base)
            .map(|(name, registration)| (name.to_owned(), registration.clone()));
        let (name, choice) = match &covering {
            Some((name, registration)) => {
                let choice = self.decide_adapter(name, registration, fhir_base).await?;
                (name.clone(), choice)
            }
            None => (String::new(), self.detect_remembered(fhir_base).await?),
        };
        let quirks = self
            .adapter_of(&name, &choice)
            .unwrap_or_else(|_| self.inner.default_adapter.clone());
        let mut ctx = HookContext::new(fhir_base);
        if let Some((name, registration)) = &covering {
            ctx = ctx.with_registration(name, registration);
        }
        self.discover_with(&*quirks, &ctx).await
    }

    /// Discovery through the cache (keyed by adapter, discovery variant and base) with a given
    /// adapter, in a given hook context.
    pub(crate) async fn discover_with(
        &self,
        quirks: &dyn VendorQuirks,
        ctx: &HookContext<'_>,
    ) -> Result<Arc<Discovered>, DiscoveryError> {
        self.inner
            .discovery
            .get_or_discover(&*self.inner.http, quirks, ctx)
            .await
    }
}
