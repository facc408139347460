//! Epic's launch-context extras, typed.
//!
//! The core keeps every token-response field it does not model in [`LaunchContext::extras`].
//! Epic puts four useful ones there; [`EpicContext`] reads them so that an app does not have to
//! know Epic's key names (or that the documentation and the JSON disagree on one of them).

use serde_json::{Map, Value};
use smart_core::LaunchContext;

/// The Epic-specific launch context of a token response.
///
/// ```
/// use serde_json::json;
/// use smart_adapter_epic::EpicContext;
/// use smart_core::LaunchContext;
///
/// let mut context = LaunchContext {
///     patient: Some("eRp.3".into()),
///     ..LaunchContext::default()
/// };
/// context.extras.insert("__epic.dstu2.patient".into(), json!("T1B"));
/// context.extras.insert("loginDepartment".into(), json!("1234"));
///
/// let epic = EpicContext::from_context(&context);
/// assert_eq!(epic.login_department.as_deref(), Some("1234"));
/// // Which patient ID to use depends on the FHIR version of the base being called.
/// let r4 = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4";
/// let dstu2 = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/DSTU2";
/// assert_eq!(epic.patient_for_base(&context, r4), Some("eRp.3"));
/// assert_eq!(epic.patient_for_base(&context, dstu2), Some("T1B"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EpicContext {
    /// The patient's DSTU2 FHIR ID (`__epic.dstu2.patient`). It differs from the R4/STU3 ID in
    /// [`LaunchContext::patient`] for R4 apps.
    pub dstu2_patient: Option<String>,
    /// The encounter department, a Location ID (`location`; EHR launches only).
    pub location: Option<String>,
    /// The appointment in context (`appointment`; EHR launches only).
    pub appointment: Option<String>,
    /// The user's login department, a Location ID (`loginDepartment`; Hyperspace EHR launches
    /// only).
    pub login_department: Option<String>,
}

impl EpicContext {
    /// The keys Epic uses for the DSTU2 patient ID: the JSON examples' `__epic.dstu2.patient`
    /// and the documentation text's `epic.dstu2.patient`, in that order of preference.
    pub const DSTU2_PATIENT_KEYS: &'static [&'static str] =
        &["__epic.dstu2.patient", "epic.dstu2.patient"];

    /// Reads the Epic extras of a parsed launch context.
    pub fn from_context(context: &LaunchContext) -> Self {
        Self::from_extras(&context.extras)
    }

    /// Quirk `epic-context-extras` (§5 row 30; Epic OAuth 2.0 Tutorial and Specification,
    /// Documented): `__epic.dstu2.patient` (also accepted as `epic.dstu2.patient`, §6.3),
    /// `location`, `appointment` and `loginDepartment`. Strings and numbers are accepted; any
    /// other value is ignored.
    pub fn from_extras(extras: &Map<String, Value>) -> Self {
        EpicContext {
            dstu2_patient: Self::DSTU2_PATIENT_KEYS
                .iter()
                .find_map(|k| id_value(extras.get(*k))),
            location: id_value(extras.get("location")),
            appointment: id_value(extras.get("appointment")),
            login_department: id_value(extras.get("loginDepartment")),
        }
    }

    /// The patient ID to use against `fhir_base`: Epic gives DSTU2 and R4/STU3 bases different
    /// patient IDs. For a base whose last path segment is `DSTU2` (any case) it is
    /// [`EpicContext::dstu2_patient`] (falling back to `patient`, which DSTU2 apps get as the
    /// same value); otherwise [`LaunchContext::patient`].
    pub fn patient_for_base<'a>(
        &'a self,
        context: &'a LaunchContext,
        fhir_base: &str,
    ) -> Option<&'a str> {
        let last_segment = fhir_base
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        if last_segment.eq_ignore_ascii_case("DSTU2") {
            self.dstu2_patient.as_deref().or(context.patient.as_deref())
        } else {
            context.patient.as_deref()
        }
    }
}

fn id_value(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use smart_core::LaunchContext;

    use super::EpicContext;

    #[test]
    fn epic_context_extras() {
        let mut context = LaunchContext {
            patient: Some("eRp.3".into()),
            ..LaunchContext::default()
        };
        context
            .extras
            .insert("__epic.dstu2.patient".into(), json!("T1B"));
        context.extras.insert("location".into(), json!("L.1"));
        context.extras.insert("appointment".into(), json!("A.1"));
        context.extras.insert("loginDepartment".into(), json!(1234));
        let epic = EpicContext::from_context(&context);
        assert_eq!(epic.dstu2_patient.as_deref(), Some("T1B"));
        assert_eq!(epic.location.as_deref(), Some("L.1"));
        assert_eq!(epic.appointment.as_deref(), Some("A.1"));
        assert_eq!(epic.login_department.as_deref(), Some("1234"));

        // The documentation text's spelling (§6.3).
        let mut text_form = LaunchContext::default();
        text_form
            .extras
            .insert("epic.dstu2.patient".into(), json!("T2B"));
        assert_eq!(
            EpicContext::from_context(&text_form)
                .dstu2_patient
                .as_deref(),
            Some("T2B")
        );

        let base = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR";
        assert_eq!(
            epic.patient_for_base(&context, &format!("{base}/R4")),
            Some("eRp.3")
        );
        assert_eq!(
            epic.patient_for_base(&context, &format!("{base}/DSTU2/")),
            Some("T1B")
        );
        let dstu2_app = LaunchContext {
            patient: Some("T1B".into()),
            ..LaunchContext::default()
        };
        assert_eq!(
            EpicContext::default().patient_for_base(&dstu2_app, &format!("{base}/DSTU2")),
            Some("T1B")
        );

        assert_eq!(
            EpicContext::from_context(&LaunchContext::default()),
            EpicContext::default()
        );
    }
}
