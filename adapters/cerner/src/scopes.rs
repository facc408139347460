//! Requested-scope adjustments for Oracle Health.
//!
//! Oracle Health's authorization server rejects wildcard scopes, fails when the scope list makes
//! the token too large for an HTTP header, and has no patient picker for the provider persona.
//! The first is fixed here by rewriting the request; the other two cannot be fixed by the
//! client, so they are logged as warnings before the user is sent to a page that will fail.

use smart_core::SmartConfiguration;
use smart_core::discovery::Capability;
use smart_core::quirks::LaunchKind;
use smart_core::scope::{PermissionSyntax, ResourceScope, ResourceType, Scope, Scopes};

use crate::ScopeVersion;

/// Quirk `cerner-no-wildcard-scopes` (§5 row 15; Oracle Health authorization specification,
/// Documented): `patient/*.read` fails, every scope must name its resource. Each wildcard
/// resource scope becomes one scope per type in `resource_types` (same context, permissions,
/// grammar and query), in place.
///
/// When the configuration lists `scopes_supported` (Oracle Health lists its 300-odd scopes, per
/// persona), types the persona offers no scope for in that context are left out; if that would
/// leave nothing, the full list is sent and a warning logged.
///
/// Quirk `cerner-scope-version` (§5 row 17; a 2026 live probe of the Oracle sandbox, Captured):
/// a registration is for SMART v1 or v2 scopes, and a v2 registration silently drops v1 scopes.
/// With `version` set (the registration's `scope_version` option) the expansion is written in
/// that grammar, whatever the wildcard's: `patient/*.read` becomes `patient/Observation.rs …` for
/// a v2 registration. A permission set with no exact v1 form (`patient/*.r`) stays in v2 for a v1
/// registration (nothing is widened), with a warning.
pub(crate) fn expand_wildcards(
    resource_types: &[String],
    version: Option<ScopeVersion>,
    configuration: &SmartConfiguration,
    scopes: &mut Scopes,
) {
    let is_wildcard = |s: &Scope| {
        s.as_resource()
            .is_some_and(|r| r.resource_type == ResourceType::Any)
    };
    if !scopes.iter().any(is_wildcard) {
        return;
    }
    let supported: Option<Vec<ResourceScope>> = configuration
        .scopes_supported
        .as_ref()
        .filter(|list| !list.is_empty())
        .map(|list| {
            list.iter()
                .filter_map(|s| Scope::parse(s).as_resource().cloned())
                .collect()
        });
    let mut expanded = Scopes::new();
    for scope in scopes.iter() {
        let Some(wildcard) = scope
            .as_resource()
            .filter(|r| r.resource_type == ResourceType::Any)
        else {
            expanded.insert(scope.clone());
            continue;
        };
        let all: Vec<ResourceScope> = resource_types
            .iter()
            .map(|t| ResourceScope {
                resource_type: ResourceType::Named(t.clone()),
                ..wildcard.clone()
            })
            .collect();
        let offered: Vec<ResourceScope> = match &supported {
            Some(supported) => all
                .iter()
                .filter(|r| {
                    supported
                        .iter()
                        .any(|s| s.context == r.context && s.resource_type == r.resource_type)
                })
                .cloned()
                .collect(),
            None => all.clone(),
        };
        let chosen = if offered.is_empty() {
            tracing::warn!(
                scope = %scope,
                "no resource type of the wildcard expansion is in scopes_supported; requesting all of them"
            );
            all
        } else {
            offered
        };
        tracing::debug!(scope = %scope, count = chosen.len(), "expanded a wildcard scope (Oracle Health has no wildcards)");
        let in_grammar = |r: ResourceScope| -> Scope {
            let scope = Scope::Resource(r);
            match version {
                Some(ScopeVersion::V2) => scope.to_v2(),
                Some(ScopeVersion::V1) => scope.to_v1().into_iter().next().unwrap_or(scope),
                None => scope,
            }
        };
        let before = expanded.len();
        expanded.extend(chosen.into_iter().map(in_grammar));
        if version == Some(ScopeVersion::V1)
            && expanded.iter().skip(before).any(|s| {
                s.as_resource()
                    .is_some_and(|r| r.syntax == PermissionSyntax::V2)
            })
        {
            tracing::warn!(
                scope = %scope,
                "the registration is for SMART v1, but these permissions have no v1 form; they are requested in v2 and may be dropped"
            );
        }
    }
    *scopes = expanded;
}

/// Quirk `cerner-scope-count-warning` (§5 row 16; Oracle Health authorization specification,
/// Documented): the granted scopes are carried in the access token, and too many make it exceed
/// HTTP header limits (4–8 KB), so the request fails. A warning is logged above `threshold`.
pub(crate) fn warn_if_too_many(threshold: usize, scopes: &Scopes) {
    if scopes.len() > threshold {
        tracing::warn!(
            count = scopes.len(),
            threshold,
            "requesting {} scopes from Oracle Health; the access token may exceed HTTP header limits and the request fail. Request only the resources the app uses",
            scopes.len()
        );
    }
}

/// Quirk `cerner-standalone-provider-persona` (§5 row 32; 2026 captures of the provider and
/// patient persona configurations, Captured): the provider persona advertises no
/// `context-standalone-patient` and offers no `launch/patient`, so a provider standalone launch
/// cannot pick a patient. Logged when a standalone launch asks for `launch/patient` and the
/// server advertises capabilities without it (not when capabilities are unknown).
pub(crate) fn warn_about_persona(
    kind: LaunchKind,
    configuration: &SmartConfiguration,
    scopes: &Scopes,
) {
    let wants_patient = scopes.iter().any(
        |s| matches!(s, Scope::LaunchContext { resource_type, .. } if resource_type == "patient"),
    );
    if kind == LaunchKind::Standalone
        && wants_patient
        && !configuration.capabilities.is_empty()
        && !configuration.supports(&Capability::ContextStandalonePatient)
    {
        tracing::warn!(
            "launch/patient requested in a standalone launch, but this Oracle Health base does not advertise context-standalone-patient: the provider persona has no patient picker. Use the patient persona base (fhir-myrecord) or launch from the EHR"
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {

    use smart_core::SmartConfiguration;
    use smart_core::discovery::Capability;
    use smart_core::quirks::{HookContext, LaunchKind, VendorQuirks};
    use smart_core::scope::Scopes;

    use crate::Cerner;

    const TOKEN: &str =
        "https://authorization.cerner.com/tenants/t/protocols/oauth2/profiles/smart-v1/token";

    pub(crate) use smart_testkit::logs::warnings_logged;

    fn adapt(cerner: &Cerner, kind: LaunchKind, config: &SmartConfiguration, s: &str) -> Scopes {
        let mut scopes = Scopes::parse(s);
        cerner.adapt_requested_scopes(
            &HookContext::new("https://fhir-ehr.cerner.com/r4/t").with_launch_kind(kind),
            config,
            &mut scopes,
        );
        scopes
    }

    #[test]
    fn cerner_no_wildcard_scopes() {
        let config = SmartConfiguration::new(TOKEN);
        let small = Cerner::new().with_resource_types(["Patient", "Observation"]);
        assert_eq!(
            adapt(
                &small,
                LaunchKind::Ehr,
                &config,
                "launch patient/*.rs openid"
            )
            .to_string(),
            "launch patient/Patient.rs patient/Observation.rs openid",
            "expanded in place, grammar kept"
        );
        assert_eq!(
            adapt(
                &small,
                LaunchKind::Ehr,
                &config,
                "user/*.read user/Patient.read"
            )
            .to_string(),
            "user/Patient.read user/Observation.read",
            "v1 grammar kept, duplicates merged"
        );
        assert_eq!(
            adapt(&small, LaunchKind::Ehr, &config, "patient/Condition.rs").to_string(),
            "patient/Condition.rs",
            "explicit scopes untouched"
        );

        let all = adapt(&Cerner::new(), LaunchKind::Ehr, &config, "patient/*.rs");
        assert_eq!(all.len(), Cerner::DEFAULT_RESOURCE_TYPES.len());
        assert!(!all.to_string().contains('*'));

        // Narrowed to what the persona offers in that context.
        let mut persona = SmartConfiguration::new(TOKEN);
        persona.scopes_supported = Some(
            [
                "patient/Observation.read",
                "patient/Observation.rs",
                "user/Patient.read",
                "openid",
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        assert_eq!(
            adapt(&small, LaunchKind::Ehr, &persona, "patient/*.rs").to_string(),
            "patient/Observation.rs"
        );
        // Nothing offered: the full list rather than no scopes at all.
        let logged = super::tests::warnings_logged(|| {
            assert_eq!(
                adapt(&small, LaunchKind::Ehr, &persona, "system/*.rs").to_string(),
                "system/Patient.rs system/Observation.rs"
            );
        });
        assert!(logged.contains("scopes_supported"), "{logged}");
    }

    #[test]
    fn cerner_scope_version() {
        use crate::ScopeVersion;
        let config = SmartConfiguration::new(TOKEN);
        let small = Cerner::new().with_resource_types(["Patient", "Observation"]);
        // A v2 registration: a v1 wildcard expands to v2 scopes (v1 ones would be dropped).
        let v2 = small.clone().with_scope_version(Some(ScopeVersion::V2));
        assert_eq!(
            adapt(&v2, LaunchKind::Ehr, &config, "launch patient/*.read").to_string(),
            "launch patient/Patient.rs patient/Observation.rs"
        );
        // Explicit scopes are the app's choice and stay as written.
        assert_eq!(
            adapt(&v2, LaunchKind::Ehr, &config, "user/Condition.read").to_string(),
            "user/Condition.read"
        );
        // A v1 registration: a v2 wildcard expands to v1 scopes.
        let v1 = small.clone().with_scope_version(Some(ScopeVersion::V1));
        assert_eq!(
            adapt(&v1, LaunchKind::Ehr, &config, "patient/*.rs").to_string(),
            "patient/Patient.read patient/Observation.read"
        );
        // No v1 form for `r` alone: kept in v2, never widened, and warned about.
        let logged = warnings_logged(|| {
            assert_eq!(
                adapt(&v1, LaunchKind::Ehr, &config, "patient/*.r").to_string(),
                "patient/Patient.r patient/Observation.r"
            );
        });
        assert!(logged.contains("no v1 form"), "{logged}");
        // Unset: the wildcard's grammar.
        assert_eq!(
            adapt(&small, LaunchKind::Ehr, &config, "patient/*.read").to_string(),
            "patient/Patient.read patient/Observation.read"
        );
    }

    #[test]
    fn cerner_scope_count_warning() {
        let config = SmartConfiguration::new(TOKEN);
        let many: Vec<String> = (0..51).map(|i| format!("patient/T{i}.rs")).collect();
        let logged = warnings_logged(|| {
            adapt(&Cerner::new(), LaunchKind::Ehr, &config, &many.join(" "));
        });
        assert!(logged.contains("header limits"), "{logged}");
        let logged = warnings_logged(|| {
            adapt(
                &Cerner::new(),
                LaunchKind::Ehr,
                &config,
                &many[..50].join(" "),
            );
        });
        assert!(logged.is_empty(), "50 scopes are fine: {logged}");
        let logged = warnings_logged(|| {
            adapt(
                &Cerner::new().with_scope_warning_threshold(2),
                LaunchKind::Ehr,
                &config,
                "launch openid fhirUser",
            );
        });
        assert!(logged.contains("header limits"), "{logged}");
        // Two wildcards over the default list pass the threshold.
        let logged = warnings_logged(|| {
            adapt(
                &Cerner::new(),
                LaunchKind::Ehr,
                &config,
                "patient/*.rs user/*.rs launch openid",
            );
        });
        assert!(logged.contains("header limits"), "{logged}");
    }

    #[test]
    fn cerner_standalone_provider_persona() {
        let mut provider = SmartConfiguration::new(TOKEN);
        provider.capabilities = vec![Capability::LaunchStandalone, Capability::LaunchEhr];
        let logged = warnings_logged(|| {
            adapt(
                &Cerner::new(),
                LaunchKind::Standalone,
                &provider,
                "launch/patient openid fhirUser patient/Patient.rs",
            );
        });
        assert!(logged.contains("provider persona"), "{logged}");

        let mut patient_persona = provider.clone();
        patient_persona
            .capabilities
            .push(Capability::ContextStandalonePatient);
        let quiet = [
            (
                LaunchKind::Standalone,
                &patient_persona,
                "launch/patient openid",
            ),
            (LaunchKind::Ehr, &provider, "launch launch/patient openid"),
            (
                LaunchKind::Standalone,
                &provider,
                "openid fhirUser user/Patient.rs",
            ),
            // Capabilities unknown (CapabilityStatement fallback): no claim about personas.
            (
                LaunchKind::Standalone,
                &SmartConfiguration::new(TOKEN),
                "launch/patient openid",
            ),
        ];
        for (kind, config, scopes) in quiet {
            let logged = warnings_logged(|| {
                adapt(&Cerner::new(), kind, config, scopes);
            });
            assert!(logged.is_empty(), "{kind:?} {scopes}: {logged}");
        }
    }
}
