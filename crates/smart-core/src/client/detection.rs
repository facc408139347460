//! Which vendor adapter serves a registration: the named one, or the one detected for the
//! server when the registration says `auto`.

use std::sync::Arc;

use http::header::ACCEPT;
use serde_json::Value;

use crate::config::ClientRegistration;
use crate::discovery::Discovered;
use crate::error::{ConfigError, DiscoveryError};
use crate::http::check_transport_security;
use crate::quirks::VendorQuirks;

use super::SmartClient;

/// The registration adapter value that asks for detection.
pub const AUTO_ADAPTER: &str = "auto";

/// Which adapter was chosen for a server, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterChoice {
    /// The adapter's name.
    pub adapter: String,
    /// The evidence (e.g. "CapabilityStatement publisher is Epic Systems Corporation").
    pub reason: String,
}

impl SmartClient {
    /// The adapter a registration uses. For `adapter = "auto"` this is the adapter detected for
    /// its issuer (see [`SmartClient::detect_adapter`]), or the default one before detection ran.
    pub fn adapter_for(
        &self,
        registration: &ClientRegistration,
    ) -> Result<&Arc<dyn VendorQuirks>, ConfigError> {
        let name = if registration.adapter == AUTO_ADAPTER {
            let detected = self
                .inner
                .detected
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match detected.get(&registration.issuer) {
                Some(choice) => choice.adapter.clone(),
                None => return Ok(&self.inner.default_adapter),
            }
        } else {
            registration.adapter.clone()
        };
        self.inner
            .adapters
            .get(&name)
            .ok_or_else(|| ConfigError::Invalid {
                field: "adapter".into(),
                message: format!("adapter `{name}` is not installed"),
            })
    }

    /// Runs detection for an `adapter = "auto"` registration the first time it meets `base`.
    pub(crate) async fn ensure_detected(&self, registration: &ClientRegistration, base: &str) {
        if registration.adapter != AUTO_ADAPTER {
            return;
        }
        let known = self
            .inner
            .detected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&registration.issuer);
        if !known {
            let choice = self.detect_adapter(base).await;
            tracing::info!(adapter = %choice.adapter, reason = %choice.reason, "adapter detected");
            self.inner
                .detected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(registration.issuer.clone(), choice);
        }
    }

    /// Picks the installed adapter that recognises the server at `fhir_base` — from its URL, its
    /// SMART configuration and its CapabilityStatement (software name, publisher) — and says
    /// why. The default adapter when none does, or when the server cannot be reached.
    pub async fn detect_adapter(&self, fhir_base: &str) -> AdapterChoice {
        let default = AdapterChoice {
            adapter: self.inner.default_adapter.name().to_owned(),
            reason: String::new(),
        };
        let Ok(base) = url::Url::parse(fhir_base) else {
            return AdapterChoice {
                reason: "the FHIR base is not a URL".into(),
                ..default
            };
        };
        let discovered = match self
            .discover_with(&*self.inner.default_adapter, fhir_base)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return AdapterChoice {
                    reason: format!("discovery failed ({e}); no vendor evidence"),
                    ..default
                };
            }
        };
        let statement = self.capability_statement(fhir_base).await;
        for name in &self.inner.adapter_order {
            let Some(adapter) = self.inner.adapters.get(name) else {
                continue;
            };
            if let Some(reason) =
                adapter.recognizes(&base, &discovered.configuration, statement.as_ref())
            {
                return AdapterChoice {
                    adapter: name.clone(),
                    reason,
                };
            }
        }
        AdapterChoice {
            reason:
                "no installed vendor adapter recognised the server; using the spec-exact default"
                    .into(),
            ..default
        }
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

    /// Discovers (through the cache) the configuration of `fhir_base`, with the adapter of the
    /// registration that covers it, or the default adapter.
    pub async fn discover(&self, fhir_base: &str) -> Result<Arc<Discovered>, DiscoveryError> {
        let quirks = match self.registration_for(fhir_base) {
            Some((_, r)) => self
                .inner
                .adapters
                .get(&r.adapter)
                .unwrap_or(&self.inner.default_adapter),
            None => &self.inner.default_adapter,
        };
        self.inner
            .discovery
            .get_or_discover(&*self.inner.http, &**quirks, fhir_base)
            .await
    }

    /// Discovery through the cache with a given adapter.
    pub(crate) async fn discover_with(
        &self,
        quirks: &dyn VendorQuirks,
        fhir_base: &str,
    ) -> Result<Arc<Discovered>, DiscoveryError> {
        self.inner
            .discovery
            .get_or_discover(&*self.inner.http, quirks, fhir_base)
            .await
    }
}
