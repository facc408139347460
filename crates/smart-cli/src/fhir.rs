//! A minimal authorized FHIR read for the demo (the full FHIR client is the `smart-fhir` crate's
//! job). The request only ever goes to the session's own FHIR base.

use http::header::AUTHORIZATION;
use serde_json::Value;
use smart_core::{Session, SmartClient};

/// GET `{fhir_base}/{path}` with the session's bearer token; returns the JSON resource.
pub(crate) async fn read(
    client: &SmartClient,
    session: &Session,
    path: &str,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let url = format!(
        "{}/{}",
        session.fhir_base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let mut request = http::Request::get(&url).body(Vec::new())?;
    let registration = client
        .registrations()
        .get(&session.registration)
        .ok_or("the session's registration is gone")?;
    client
        .adapter_for(registration)?
        .fhir_request_headers(request.headers_mut());
    let mut bearer = http::HeaderValue::from_str(&format!(
        "Bearer {}",
        session.tokens.access_token.expose_secret()
    ))?;
    bearer.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let response = client.http().execute(request).await?;
    if !response.status().is_success() {
        return Err(format!("FHIR read of {path} failed with HTTP {}", response.status()).into());
    }
    Ok(serde_json::from_slice(response.body())?)
}

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
