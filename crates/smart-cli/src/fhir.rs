//! Small helpers to print FHIR resources for people.

use serde_json::Value;

/// "Given Family" from a Patient resource.
pub(crate) fn patient_name(patient: &Value) -> String {
    let Some(name) = patient.get("name").and_then(|n| n.get(0)) else {
        return "(no name)".into();
    };
    let given: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let family = name.get("family").and_then(Value::as_str).unwrap_or("");
    format!("{} {family}", given.join(" ")).trim().to_owned()
}

/// "2024-05-01  Heart rate  72 /min" from an Observation.
pub(crate) fn observation_line(observation: &Value) -> String {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let code = observation.get("code");
    let label = code
        .and_then(|c| c.get("text").and_then(text))
        .or_else(|| {
            code.and_then(|c| c.get("coding"))
                .and_then(|c| c.get(0))
                .and_then(|c| c.get("display").and_then(text))
        })
        .unwrap_or_else(|| "(unnamed)".into());
    let date = observation
        .get("effectiveDateTime")
        .and_then(Value::as_str)
        .map(|d| d.chars().take(10).collect::<String>())
        .unwrap_or_else(|| "----------".into());
    let quantity = |q: &Value| {
        let value = q.get("value").map(|v| v.to_string()).unwrap_or_default();
        let unit = q.get("unit").and_then(Value::as_str).unwrap_or("");
        format!("{value} {unit}").trim().to_owned()
    };
    let value = match observation.get("valueQuantity") {
        Some(q) => quantity(q),
        None => observation
            .get("component")
            .and_then(Value::as_array)
            .map(|components| {
                components
                    .iter()
                    .filter_map(|c| c.get("valueQuantity").map(quantity))
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .unwrap_or_default(),
    };
    let label: String = label.chars().take(28).collect();
    format!("{date}  {label:<28} {value}")
}
