//! Vendor recognition (`S-0.1`, informational): which catalogued adapter, if any, recognises the
//! server, and the catalogue rows that adapter documents, so a reader of a failed check can see
//! at once whether it is a known vendor behaviour.

use std::fmt::Write as _;

use super::checks::S_0_1;
use super::runner::Runner;
use crate::model::Status;

/// Catalogue rows listed in the detail before it is cut short.
const MAX_ROWS: usize = 40;

impl Runner<'_> {
    pub(crate) async fn recognise_vendor(&mut self) {
        let base = self.target.base().to_owned();
        if url::Url::parse(&base).is_err() {
            self.set(
                &S_0_1,
                Status::NotApplicable("the FHIR base is not a URL".into()),
            );
            return;
        }
        let Ok(configuration) = serde_json::from_value::<smart_core::SmartConfiguration>(
            serde_json::Value::Object(self.endpoints.config.clone()),
        ) else {
            self.set(
                &S_0_1,
                Status::NotApplicable(
                    "the configuration does not parse as a SMART configuration".into(),
                ),
            );
            return;
        };
        let capability = match self.fhir_get("metadata", None).await {
            Ok(r) if r.ok() => r.json_object().map(serde_json::Value::Object),
            _ => None,
        };
        let ctx =
            smart_core::quirks::HookContext::new(&base).with_client_id(&self.target.app.client_id);
        let mut found = Vec::new();
        for descriptor in smart_adapters::descriptors() {
            let adapter = (descriptor.adapter)();
            if let Some(evidence) = adapter.recognizes(&ctx, &configuration, capability.as_ref()) {
                found.push((descriptor, evidence));
            }
        }
        let status = if found.is_empty() {
            Status::NotApplicable(
                "no catalogued vendor recognises this server; it is held to the specification only"
                    .into(),
            )
        } else {
            let mut detail = String::new();
            for (descriptor, evidence) in &found {
                let _ = write!(
                    detail,
                    "recognised as `{}` ({}); catalogued quirks:",
                    descriptor.name,
                    super::wire::excerpt(evidence)
                );
                let rows = descriptor.catalogue;
                for q in rows.iter().take(MAX_ROWS) {
                    let _ = write!(detail, " row {} {},", q.row, q.id);
                }
                if rows.len() > MAX_ROWS {
                    let _ = write!(detail, " and {} more", rows.len() - MAX_ROWS);
                }
                detail.push_str("; ");
            }
            Status::NotApplicable(detail.trim_end_matches([';', ' ', ',']).to_owned())
        };
        self.set(&S_0_1, status);
    }
}
