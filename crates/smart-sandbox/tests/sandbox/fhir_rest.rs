//! FHIR REST interactions: read, vread, history, create, update, delete,
//! conditional create, batch, transaction, `$everything`, validation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

fn heart_rate(patient: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2025-01-02T03:04:05Z",
        "valueQuantity": {"value": value, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
    })
}

#[tokio::test]
async fn read_vread_history_and_errors() {
    let sb = start().await;
    let t = user_token(&sb).await;
    let resp = read(&sb, "Observation/obs-1-1", Some(&t)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/fhir+json");
    assert_eq!(header(&resp, "etag"), "W/\"1\"");
    assert!(header(&resp, "last-modified").ends_with(" GMT"));
    let obs: Value = resp.json().await.unwrap();
    assert_eq!(obs["id"], "obs-1-1");
    assert_eq!(obs["meta"]["versionId"], "1");
    assert!(obs["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));
    assert_eq!(obs["subject"]["reference"], "Patient/pat-1");
    assert!(obs["effectiveDateTime"].is_string());

    assert_eq!(
        get_json(&sb, "Observation/obs-1-1/_history/1", &t, 200).await,
        obs
    );
    let oo = get_json(&sb, "Observation/obs-1-1/_history/2", &t, 404).await;
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let history = get_json(&sb, "Observation/obs-1-1/_history", &t, 200).await;
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 1);
    assert_eq!(history["entry"][0]["resource"], obs);

    for (path, status) in [
        ("Observation/nope", 404),
        ("Observation/nope/_history", 404),
        ("Foo/1", 404),
        ("Foo", 404),
        ("Observation/bad%20id", 400),
        ("", 400),
    ] {
        let resp = read(&sb, path, Some(&t)).await;
        assert_eq!(resp.status(), status, "{path}");
        let oo: Value = resp.json().await.unwrap();
        assert_eq!(oo["resourceType"], "OperationOutcome", "{path}");
    }
    let resp = http()
        .get(format!("{}/Patient/pat-1", sb.fhir_base()))
        .bearer_auth(&t)
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);

    // The CapabilityStatement lists the types, interactions and parameters.
    let cs: Value = http()
        .get(format!("{}/metadata", sb.fhir_base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rest = &cs["rest"][0];
    let obs = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let params: Vec<&str> = obs["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "patient", "subject", "category", "code", "date", "status", "_id",
    ] {
        assert!(params.contains(&p), "{p}");
    }
    assert!(
        rest["interaction"]
            .as_array()
            .unwrap()
            .contains(&json!({"code": "transaction"}))
    );
    assert_eq!(
        rest["security"]["extension"][0]["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
}

#[tokio::test]
async fn create_update_if_match_delete_and_gone() {
    let sb = start().await;
    register_writer(&sb);
    let t = access_token(&sb, WRITER, "user/*.cruds").await;

    let resp = send(
        &sb,
        Method::POST,
        "Observation",
        &t,
        Some(&heart_rate("pat-3", 71.5)),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "etag"), "W/\"1\"");
    let location = header(&resp, "location");
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("{}/Observation/{id}/_history/1", sb.fhir_base())
    );
    assert_eq!(created["meta"]["versionId"], "1");
    assert_eq!(created["valueQuantity"]["value"], 71.5);
    let read_back = get_json(&sb, &format!("Observation/{id}"), &t, 200).await;
    assert_eq!(read_back, created);
    let found = get_json(&sb, &format!("Observation?_id={id}&patient=pat-3"), &t, 200).await;
    assert_eq!(total(&found), 1);

    // Update with the right version, then with a stale one.
    let mut changed = created.clone();
    changed["valueQuantity"]["value"] = json!(88.0);
    let resp = send(
        &sb,
        Method::PUT,
        &format!("Observation/{id}"),
        &t,
        Some(&changed),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "etag"), "W/\"2\"");
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["meta"]["versionId"], "2");
    assert_eq!(updated["valueQuantity"]["value"], 88.0);
    let resp = send(
        &sb,
        Method::PUT,
        &format!("Observation/{id}"),
        &t,
        Some(&changed),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(resp.status(), 412);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    // vread keeps the old version; history has both, newest first.
    let v1 = get_json(&sb, &format!("Observation/{id}/_history/1"), &t, 200).await;
    assert_eq!(v1["valueQuantity"]["value"], 71.5);
    let history = get_json(&sb, &format!("Observation/{id}/_history"), &t, 200).await;
    assert_eq!(history["total"], 2);
    assert_eq!(history["entry"][0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(history["entry"][1]["request"]["method"], "POST");

    // Update-as-create with a client id.
    let mut own = heart_rate("pat-3", 60.0);
    own["id"] = json!("my-obs-1");
    let resp = send(
        &sb,
        Method::PUT,
        "Observation/my-obs-1",
        &t,
        Some(&own),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "etag"), "W/\"1\"");

    // Validation.
    let patient = json!({"resourceType": "Patient"});
    let resp = send(&sb, Method::POST, "Observation", &t, Some(&patient), &[]).await;
    assert_eq!(resp.status(), 400);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let resp = http()
        .post(format!("{}/Observation", sb.fhir_base()))
        .bearer_auth(&t)
        .header("content-type", "application/fhir+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let resp = send(
        &sb,
        Method::POST,
        "Widget",
        &t,
        Some(&json!({"resourceType": "Widget"})),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = send(
        &sb,
        Method::PUT,
        "Observation/other-id",
        &t,
        Some(&own),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 400, "body id differs from the URL");
    let resp = send(
        &sb,
        Method::POST,
        "Observation",
        &t,
        Some(&json!({"resourceType": "Observation", "status": "final"})),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 400, "Observation.code is required");

    // Delete, then 410; deleting again is fine; vread of the old version works.
    let resp = send(
        &sb,
        Method::DELETE,
        &format!("Observation/{id}"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(resp.status(), 204);
    let resp = read(&sb, &format!("Observation/{id}"), Some(&t)).await;
    assert_eq!(resp.status(), 410);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(
        send(
            &sb,
            Method::DELETE,
            &format!("Observation/{id}"),
            &t,
            None,
            &[]
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        read(&sb, &format!("Observation/{id}/_history/2"), Some(&t))
            .await
            .status(),
        200
    );
    assert_eq!(
        read(&sb, &format!("Observation/{id}/_history/3"), Some(&t))
            .await
            .status(),
        410
    );
    let found = get_json(&sb, &format!("Observation?_id={id}"), &t, 200).await;
    assert_eq!(total(&found), 0);
    assert_eq!(
        send(&sb, Method::DELETE, "Observation/never-was", &t, None, &[])
            .await
            .status(),
        404
    );
    // Generated data can be deleted too.
    assert_eq!(
        send(&sb, Method::DELETE, "Condition/cond-1-1", &t, None, &[])
            .await
            .status(),
        204
    );
    assert_eq!(
        read(&sb, "Condition/cond-1-1", Some(&t)).await.status(),
        410
    );

    let c = sb.counters();
    assert!(c.fhir_writes >= 10, "{c:?}");
}

#[tokio::test]
async fn conditional_create() {
    let sb = start().await;
    register_writer(&sb);
    let t = access_token(&sb, WRITER, "user/*.cruds").await;
    let patient = json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test", "value": "abc"}],
        "name": [{"family": "Conditional"}]
    });
    let cond = [("if-none-exist", "identifier=urn:test|abc")];
    let resp = send(&sb, Method::POST, "Patient", &t, Some(&patient), &cond).await;
    assert_eq!(resp.status(), 201);
    let first: Value = resp.json().await.unwrap();
    let resp = send(&sb, Method::POST, "Patient", &t, Some(&patient), &cond).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "etag"), "W/\"1\"");
    let again: Value = resp.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    // A second one without the condition; now the condition is ambiguous.
    assert_eq!(
        send(&sb, Method::POST, "Patient", &t, Some(&patient), &[])
            .await
            .status(),
        201
    );
    let resp = send(&sb, Method::POST, "Patient", &t, Some(&patient), &cond).await;
    assert_eq!(resp.status(), 412);
    let found = get_json(&sb, "Patient?identifier=urn:test|abc", &t, 200).await;
    assert_eq!(total(&found), 2);
}

#[tokio::test]
async fn transaction_resolves_references_and_rolls_back() {
    let sb = start().await;
    register_writer(&sb);
    let t = access_token(&sb, WRITER, "user/*.cruds").await;
    let mut obs = heart_rate("x", 64.2);
    obs["subject"] = json!({"reference": "urn:uuid:7f0e2d5c-1111-4aaa-8bbb-0123456789ab"});
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7f0e2d5c-1111-4aaa-8bbb-0123456789ab",
                "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "tx"}]},
                "request": {"method": "POST", "url": "Patient"}
            },
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": "Patient?identifier=urn:test|tx"}}
        ]
    });
    let resp = send(&sb, Method::POST, "", &t, Some(&bundle), &[]).await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["type"], "transaction-response");
    let entries = out["entry"].as_array().unwrap();
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert_eq!(entries[1]["response"]["status"], "201 Created");
    assert_eq!(entries[2]["response"]["status"], "200 OK");
    let patient_id = entries[0]["resource"]["id"].as_str().unwrap();
    assert_eq!(
        entries[1]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    assert_eq!(
        total(&entries[2]["resource"]),
        1,
        "GETs run after the writes"
    );
    let obs_id = entries[1]["resource"]["id"].as_str().unwrap();
    assert!(
        entries[1]["response"]["location"]
            .as_str()
            .unwrap()
            .contains(&format!("/Observation/{obs_id}/_history/1"))
    );

    // A conditional create that finds its match: references resolve to it.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": heart_rate("x", 70.0), "request": {"method": "POST", "url": "Observation"}},
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "tx"}]},
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:test|tx"}
            }
        ]
    });
    let mut bundle = bundle;
    bundle["entry"][0]["resource"]["subject"]["reference"] =
        json!("urn:uuid:00000000-0000-4000-8000-000000000001");
    let out: Value = send(&sb, Method::POST, "", &t, Some(&bundle), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["entry"][1]["response"]["status"], "200 OK");
    assert_eq!(out["entry"][1]["resource"]["id"], patient_id);
    assert_eq!(
        out["entry"][0]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );

    // One failing entry (stale If-Match) rolls back the whole transaction.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "rollback"}]},
                "request": {"method": "POST", "url": "Patient"}
            },
            {"request": {"method": "DELETE", "url": "Observation/obs-2-1"}},
            {
                "resource": {"resourceType": "Observation", "id": "obs-1-1", "status": "final",
                             "code": {"text": "x"}, "subject": {"reference": "Patient/pat-1"}},
                "request": {"method": "PUT", "url": "Observation/obs-1-1", "ifMatch": "W/\"99\""}
            }
        ]
    });
    let resp = send(&sb, Method::POST, "", &t, Some(&bundle), &[]).await;
    assert_eq!(resp.status(), 412);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("entry 2")
    );
    let found = get_json(&sb, "Patient?identifier=urn:test|rollback", &t, 200).await;
    assert_eq!(total(&found), 0);
    assert_eq!(
        read(&sb, "Observation/obs-2-1", Some(&t)).await.status(),
        200
    );
    let obs = get_json(&sb, "Observation/obs-1-1", &t, 200).await;
    assert_eq!(obs["meta"]["versionId"], "1");

    // A bad body is a 400.
    let resp = send(
        &sb,
        Method::POST,
        "",
        &t,
        Some(&json!({"resourceType": "Bundle", "type": "collection"})),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn batch_reports_each_entry() {
    let sb = start().await;
    register_writer(&sb);
    let t = access_token(&sb, WRITER, "user/*.cruds").await;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/pat-1"}},
            {"request": {"method": "GET", "url": "Patient/nobody"}},
            {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "DELETE", "url": "Observation/obs-2-1"}},
            {"resource": heart_rate("pat-2", 80.1), "request": {"method": "POST", "url": format!("{}/Observation", sb.fhir_base())}},
            {"request": {"method": "GET", "url": "Observation?patient=pat-2&_count=1"}},
            {"request": {"method": "PATCH", "url": "Observation/obs-2-2"}}
        ]
    });
    let resp = send(&sb, Method::POST, "", &t, Some(&bundle), &[]).await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["type"], "batch-response");
    let statuses: Vec<&str> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "200 OK",
            "404 Not Found",
            "400 Bad Request",
            "204 No Content",
            "201 Created",
            "200 OK",
            "400 Bad Request"
        ]
    );
    assert_eq!(out["entry"][0]["resource"]["id"], "pat-1");
    assert_eq!(
        out["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(out["entry"][5]["resource"]["type"], "searchset");
    assert_eq!(
        read(&sb, "Observation/obs-2-1", Some(&t)).await.status(),
        410
    );
}

#[tokio::test]
async fn patient_everything_is_paged() {
    let sb = start().await;
    let t = user_token(&sb).await;
    let first = get_json(&sb, "Patient/pat-1/$everything?_count=60", &t, 200).await;
    assert_eq!(first["type"], "searchset");
    assert_eq!(matches(&first)[0]["resourceType"], "Patient");
    assert_eq!(matches(&first)[0]["id"], "pat-1");
    let expected = total(&first);
    let observations = total(&get_json(&sb, "Observation?patient=pat-1&_count=0", &t, 200).await);
    let conditions = total(&get_json(&sb, "Condition?patient=pat-1&_count=0", &t, 200).await);
    assert!(expected > observations + conditions + 3);
    let pages = all_pages(first, &t).await;
    let mut seen = std::collections::HashSet::new();
    for page in &pages {
        for r in matches(page) {
            let key = format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            );
            assert!(seen.insert(key.clone()), "duplicate {key}");
            if r["resourceType"] != "Patient" {
                let owner = r["subject"]["reference"]
                    .as_str()
                    .or(r["patient"]["reference"].as_str())
                    .unwrap();
                assert_eq!(owner, "Patient/pat-1", "{key}");
            }
        }
    }
    assert_eq!(seen.len() as u64, expected);
    assert_eq!(
        read(&sb, "Patient/nobody/$everything", Some(&t))
            .await
            .status(),
        404
    );
    assert_eq!(
        read(&sb, "Observation/obs-1-1/$everything", Some(&t))
            .await
            .status(),
        404
    );
}
