//! Recognising an Oracle Health (Cerner Millennium) server, for registrations that do not name an
//! adapter.
//!
//! Evidence is checked from the most specific to the least: the FHIR base's host and path, the
//! SMART configuration's endpoints, then the CapabilityStatement. The first match wins and is
//! returned as a reason a person can read in a log.

use serde_json::Value;
use smart_core::SmartConfiguration;
use url::Url;

/// Registrable domains of Oracle Health's FHIR and authorization hosts (production, staging,
/// sandbox).
const DOMAINS: &[&str] = &["cerner.com", "stagingcerner.com", "sandboxcerner.com"];

/// First host labels of the per-persona FHIR hosts.
const PERSONA_HOSTS: &[&str] = &["fhir-ehr", "fhir-myrecord", "fhir-open"];

/// Quirk `cerner-recognition` (§5 row 5, the URL shapes of §2.2; Millennium documentation,
/// Documented; the CapabilityStatement publisher is Inferred): bases are
/// `https://{fhir-ehr|fhir-ehr-code|fhir-myrecord|fhir-open}.cerner.com/{r4|dstu2}/{tenant GUID}`,
/// the authorization server is `authorization.cerner.com`, and the CapabilityStatement names
/// Cerner or Oracle as publisher.
pub(crate) fn recognizes(
    base: &Url,
    configuration: &SmartConfiguration,
    capability_statement: Option<&Value>,
) -> Option<String> {
    let host = base.host_str().unwrap_or_default().to_ascii_lowercase();
    if let Some(domain) = DOMAINS
        .iter()
        .find(|d| host == **d || host.ends_with(&format!(".{d}")))
    {
        return Some(format!(
            "FHIR base host {host} is an Oracle Health domain ({domain})"
        ));
    }
    if let Some(tenant) = tenant_segment(base) {
        let persona = PERSONA_HOSTS.iter().find(|p| host.starts_with(**p));
        return Some(match persona {
            Some(p) => format!(
                "FHIR base has an Oracle Health persona host ({p}…) and tenant path /…/{tenant}"
            ),
            None => format!(
                "FHIR base path has Oracle Health's /{{r4|dstu2}}/{{tenant GUID}} shape ({tenant})"
            ),
        });
    }
    let endpoints = [
        configuration.issuer.as_deref(),
        configuration.authorization_endpoint.as_deref(),
        Some(configuration.token_endpoint.as_str()),
    ];
    if endpoints
        .into_iter()
        .flatten()
        .filter_map(|e| Url::parse(e).ok())
        .any(|u| u.host_str() == Some("authorization.cerner.com"))
    {
        return Some("SMART configuration endpoints are on authorization.cerner.com".to_owned());
    }
    let publisher = capability_statement?
        .get("publisher")
        .and_then(Value::as_str)?;
    let lower = publisher.to_ascii_lowercase();
    (lower.contains("cerner") || lower.contains("oracle"))
        .then(|| format!("CapabilityStatement publisher is {publisher:?}"))
}

/// The tenant GUID when the path contains `/r4/{guid}` or `/dstu2/{guid}`.
fn tenant_segment(base: &Url) -> Option<&str> {
    let segments: Vec<&str> = base.path_segments()?.collect();
    segments
        .windows(2)
        .find(|w| matches!(w[0], "r4" | "dstu2") && is_guid(w[1]))
        .map(|w| w[1])
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use smart_core::SmartConfiguration;
    use smart_core::quirks::{HookContext, VendorQuirks};
    use url::Url;

    use crate::Cerner;

    const TENANT: &str = "ec2458f2-1e24-41c8-b71b-0e701af7583d";

    fn recognizes(
        base: &str,
        config: &SmartConfiguration,
        cs: Option<serde_json::Value>,
    ) -> Option<String> {
        Cerner::new().recognizes(
            &HookContext::new(Url::parse(base).expect("url").as_str()),
            config,
            cs.as_ref(),
        )
    }

    #[test]
    fn cerner_recognition() {
        let plain = SmartConfiguration::new("https://auth.example/token");
        let hit = |r: Option<String>| r.expect("recognised");
        for host in [
            "fhir-ehr.cerner.com",
            "fhir-ehr-code.cerner.com",
            "fhir-myrecord.cerner.com",
            "fhir-open.cerner.com",
        ] {
            assert!(
                hit(recognizes(
                    &format!("https://{host}/r4/{TENANT}"),
                    &plain,
                    None
                ))
                .contains("Oracle Health domain")
            );
        }
        assert!(
            hit(recognizes(
                &format!("https://fhir-ehr.stagingcerner.com/beta/{TENANT}"),
                &plain,
                None
            ))
            .contains("stagingcerner.com")
        );
        assert!(
            hit(recognizes(
                &format!("https://fhir-ehr.proxy.example/r4/{TENANT}"),
                &plain,
                None
            ))
            .contains("persona host")
        );
        assert!(
            hit(recognizes(
                &format!("https://ehr.proxy.example/fhir/dstu2/{TENANT}/"),
                &plain,
                None
            ))
            .contains("tenant GUID")
        );
        let mut config = SmartConfiguration::new(format!(
            "https://authorization.cerner.com/tenants/{TENANT}/protocols/oauth2/profiles/smart-v1/token"
        ));
        config.issuer = Some(format!("https://authorization.cerner.com/tenants/{TENANT}"));
        assert!(
            hit(recognizes("https://ehr.proxy.example/fhir", &config, None))
                .contains("authorization.cerner.com")
        );
        assert!(
            hit(recognizes(
                "https://ehr.proxy.example/fhir",
                &plain,
                Some(json!({"resourceType": "CapabilityStatement", "publisher": "Cerner"}))
            ))
            .contains("Cerner")
        );
        assert!(
            hit(recognizes(
                "https://ehr.proxy.example/fhir",
                &plain,
                Some(json!({"publisher": "Oracle Health"}))
            ))
            .contains("Oracle")
        );

        // Not Oracle Health.
        assert_eq!(
            recognizes("https://hapi.fhir.org/baseR4", &plain, None),
            None
        );
        assert_eq!(
            recognizes("https://notcerner.example/r4/not-a-guid", &plain, None),
            None
        );
        assert_eq!(
            recognizes(&format!("https://ehr.example/R5/{TENANT}"), &plain, None),
            None
        );
        assert_eq!(
            recognizes("https://fhir-open.example.org/fhir", &plain, None),
            None
        );
        assert_eq!(
            recognizes(
                "https://ehr.example/fhir",
                &plain,
                Some(json!({"publisher": "Epic Systems Corporation"}))
            ),
            None
        );
    }
}
