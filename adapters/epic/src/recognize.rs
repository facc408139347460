//! Recognising an Epic server, for registrations that do not name an adapter.
//!
//! Evidence is checked from the cheapest and most specific to the least: the FHIR base's host,
//! its path, the SMART configuration, then the CapabilityStatement. The first match wins and is
//! returned as a reason a person can read in a log ("why did it pick the Epic adapter?").

use serde_json::Value;
use smart_core::SmartConfiguration;
use url::Url;

/// The Epic-only scope that Epic's `scopes_supported` lists.
const EPIC_SCOPE: &str = "epic.scanning.dmsusername";

/// Quirk `epic-recognition` (§5 row 5, the URL shapes of §1.2; Epic OAuth 2.0 Specification and
/// open.epic.com endpoint directory, Documented; the scope is Captured): Epic bases live on
/// `fhir.epic.com`, `*.epic.com` or `*.epichosted.com`, or end in `/api/FHIR/{DSTU2|STU3|R4}`
/// (the `FHIR` spelled in capitals) on customers' own hosts; Epic lists the
/// `epic.scanning.dmsusername` scope; and its CapabilityStatement names Epic as software or
/// publisher.
pub(crate) fn recognizes(
    base: &Url,
    configuration: &SmartConfiguration,
    capability_statement: Option<&Value>,
) -> Option<String> {
    if let Some(host) = base.host_str() {
        let host = host.to_ascii_lowercase();
        for domain in ["epic.com", "epichosted.com"] {
            if host == domain || host.ends_with(&format!(".{domain}")) {
                return Some(format!(
                    "FHIR base host {host} is an Epic domain ({domain})"
                ));
            }
        }
    }
    if base.path().contains("/api/FHIR/") {
        return Some("FHIR base path contains Epic's /api/FHIR/ segment".to_owned());
    }
    if configuration
        .scopes_supported
        .as_ref()
        .is_some_and(|s| s.iter().any(|x| x == EPIC_SCOPE))
    {
        return Some(format!(
            "SMART configuration lists the Epic-only scope {EPIC_SCOPE}"
        ));
    }
    let statement = capability_statement?;
    if let Some(name) = statement
        .get("software")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .filter(|n| n.contains("Epic"))
    {
        return Some(format!("CapabilityStatement software.name is {name:?}"));
    }
    statement
        .get("publisher")
        .and_then(Value::as_str)
        .filter(|p| p.trim().eq_ignore_ascii_case("Epic Systems Corporation"))
        .map(|_| "CapabilityStatement publisher is Epic Systems Corporation".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use smart_core::SmartConfiguration;
    use smart_core::quirks::{HookContext, VendorQuirks};

    use crate::Epic;

    fn recognizes(
        base: &str,
        scopes: Option<&[&str]>,
        cs: Option<serde_json::Value>,
    ) -> Option<String> {
        let mut config = SmartConfiguration::new("https://auth.example/token");
        config.scopes_supported = scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect());
        Epic::new().recognizes(&HookContext::new(base), &config, cs.as_ref())
    }

    #[test]
    fn epic_recognition() {
        let hit = |r: Option<String>| r.expect("recognised");
        assert!(
            hit(recognizes(
                "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4",
                None,
                None
            ))
            .contains("epic.com")
        );
        assert!(
            hit(recognizes(
                "https://epicproxy.et0948.epichosted.com/FhirProxy/api/FHIR/R4",
                None,
                None
            ))
            .contains("epichosted.com")
        );
        assert!(
            hit(recognizes(
                "https://haiku.wacofhc.org/FHIR/api/FHIR/R4/",
                None,
                None
            ))
            .contains("/api/FHIR/")
        );
        assert!(
            hit(recognizes(
                "https://ehr.example.org/fhir/r4",
                Some(&["epic.scanning.dmsusername", "openid"]),
                None
            ))
            .contains("epic.scanning.dmsusername")
        );
        assert_eq!(
            hit(recognizes(
                "https://ehr.example.org/fhir/r4",
                None,
                Some(
                    json!({"resourceType": "CapabilityStatement", "publisher": "Epic Systems Corporation"})
                )
            )),
            "CapabilityStatement publisher is Epic Systems Corporation"
        );
        assert!(
            hit(recognizes(
                "https://ehr.example.org/fhir/r4",
                None,
                Some(json!({"software": {"name": "Epic", "version": "February 2026"}}))
            ))
            .contains("software.name")
        );

        // Not Epic: a generic server, a look-alike domain, a lower-case /api/fhir/ path.
        assert_eq!(recognizes("https://hapi.fhir.org/baseR4", None, None), None);
        assert_eq!(recognizes("https://notepic.com/fhir", None, None), None);
        assert_eq!(
            recognizes("https://ehr.example.org/api/fhir/r4", None, None),
            None
        );
        assert_eq!(
            recognizes(
                "https://ehr.example.org/fhir",
                Some(&["openid"]),
                Some(json!({"publisher": "HAPI", "software": {"name": "HAPI FHIR Server"}}))
            ),
            None
        );
    }
}
