//! The access gate of the FHIR API (issue 9, items 9, 11, 12, 13): every
//! interaction that returns a stored resource, under every shape of scope,
//! against data inside and outside the token's patient compartment; the
//! conditional-create and `_history` holes; signed page tokens.

use reqwest::Method;
use serde_json::{Value, json};
use smart_sandbox::{LaunchContextRequest, Sandbox};

use crate::common::*;

/// A token from an EHR launch of [`WRITER`] for `patient`.
async fn patient_token(sb: &Sandbox, patient: &str, scope: &str) -> String {
    let launch = sb
        .issue_launch(
            WRITER,
            LaunchContextRequest {
                patient: Some(patient.into()),
                ..Default::default()
            },
        )
        .unwrap();
    let p = pkce();
    let mut params = auth_params(sb, WRITER, &format!("launch {scope}"), &p);
    params.push(("launch".into(), launch));
    let resp = authorize(sb, &params).await;
    let code = redirect_params(&resp)["code"].clone();
    let resp = exchange(sb, WRITER, &code, &p).await;
    assert_eq!(resp.status(), 200, "{scope}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["patient"], patient);
    body["access_token"].as_str().unwrap().to_owned()
}

/// Who a scope shape is for.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// EHR launch with `pat-1` in context.
    Patient,
    /// Authorization-code token without a patient in context.
    User,
    /// Backend Services token.
    System,
}

/// One scope shape of the table, and what it should see.
struct Shape {
    kind: Kind,
    scope: &'static str,
    /// Sees laboratory Observations of `pat-1` / of `pat-2`.
    sees: [bool; 2],
    /// Has create and search on Observation (a conditional create can then
    /// answer with a visible match).
    conditional: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        kind: Kind::Patient,
        scope: "patient/*.crs",
        sees: [true, false],
        conditional: true,
    },
    Shape {
        kind: Kind::Patient,
        scope: "patient/*.read patient/Observation.write",
        sees: [true, false],
        conditional: true,
    },
    Shape {
        kind: Kind::Patient,
        scope: "patient/Patient.rs patient/Observation.rs?category=laboratory",
        sees: [true, false],
        conditional: false,
    },
    Shape {
        kind: Kind::Patient,
        scope: "patient/Patient.rs patient/Observation.crs?category=vital-signs",
        sees: [false, false],
        conditional: false,
    },
    Shape {
        kind: Kind::Patient,
        scope: "patient/Observation.c",
        sees: [false, false],
        conditional: false,
    },
    Shape {
        kind: Kind::User,
        scope: "user/*.crs",
        sees: [true, true],
        conditional: true,
    },
    Shape {
        kind: Kind::User,
        scope: "user/*.read",
        sees: [true, true],
        conditional: false,
    },
    Shape {
        kind: Kind::User,
        scope: "user/Patient.rs user/Observation.rs?category=laboratory",
        sees: [true, true],
        conditional: false,
    },
    Shape {
        kind: Kind::User,
        scope: "user/Observation.c",
        sees: [false, false],
        conditional: false,
    },
    Shape {
        kind: Kind::System,
        scope: "system/*.crs",
        sees: [true, true],
        conditional: true,
    },
    Shape {
        kind: Kind::System,
        scope: "system/*.read",
        sees: [true, true],
        conditional: false,
    },
    Shape {
        kind: Kind::System,
        scope: "system/Patient.rs system/Observation.rs?category=laboratory",
        sees: [true, true],
        conditional: false,
    },
];

async fn token_for(sb: &Sandbox, shape: &Shape) -> String {
    match shape.kind {
        Kind::Patient => patient_token(sb, "pat-1", shape.scope).await,
        Kind::User => access_token(sb, WRITER, shape.scope).await,
        Kind::System => system_token(sb, shape.scope).await,
    }
}

/// What the table needs of one patient: one of its laboratory
/// Observations, and a page token a privileged client got for its labs.
struct Target {
    patient: &'static str,
    lab: String,
    page: String,
}

async fn target(sb: &Sandbox, admin: &str, patient: &'static str) -> Target {
    let labs = get_json(
        sb,
        &format!("Observation?patient={patient}&category=laboratory&_count=1"),
        admin,
        200,
    )
    .await;
    let lab = match_ids(&labs)
        .first()
        .cloned()
        .expect("a laboratory Observation");
    let page = link(&labs, "next").expect("a second page of laboratory results");
    Target { patient, lab, page }
}

const OPERATIONS: &[&str] = &[
    "read",
    "vread",
    "history",
    "search GET",
    "search POST",
    "$everything",
    "page token",
    "batch GET",
    "transaction GET",
    "conditional create",
    "batch conditional create",
    "transaction conditional create",
];

fn new_observation() -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "text": "access table probe" },
        "subject": { "reference": "Patient/pat-1" }
    })
}

fn bundle(kind: &str, entry: Value) -> Value {
    json!({ "resourceType": "Bundle", "type": kind, "entry": [entry] })
}

/// Runs `operation` with `token` and says whether the response shows
/// `target.lab` (or, for the page token, a laboratory Observation of the
/// target patient).
async fn shows(sb: &Sandbox, token: &str, operation: &str, target: &Target) -> bool {
    let lab = &target.lab;
    let patient = target.patient;
    let ok_json = |resp: reqwest::Response| async move {
        if resp.status() == 200 {
            Some(resp.json::<Value>().await.unwrap())
        } else {
            let status = resp.status().as_u16();
            assert!(
                [403, 404, 201].contains(&status),
                "{operation}: unexpected status {status}"
            );
            None
        }
    };
    let is_lab = |r: &Value| r["id"] == lab.as_str();
    match operation {
        "read" => ok_json(read(sb, &format!("Observation/{lab}"), Some(token)).await)
            .await
            .is_some_and(|r| is_lab(&r)),
        "vread" => ok_json(read(sb, &format!("Observation/{lab}/_history/1"), Some(token)).await)
            .await
            .is_some_and(|r| is_lab(&r)),
        "history" => ok_json(read(sb, &format!("Observation/{lab}/_history"), Some(token)).await)
            .await
            .is_some_and(|b| {
                b["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| is_lab(&e["resource"]))
            }),
        "search GET" => ok_json(read(sb, &format!("Observation?_id={lab}"), Some(token)).await)
            .await
            .is_some_and(|b| match_ids(&b).contains(lab)),
        "search POST" => {
            let resp = http()
                .post(format!("{}/Observation/_search", sb.fhir_base()))
                .bearer_auth(token)
                .form(&[("patient", patient), ("_id", lab.as_str())])
                .send()
                .await
                .unwrap();
            ok_json(resp)
                .await
                .is_some_and(|b| match_ids(&b).contains(lab))
        }
        "$everything" => {
            let Some(first) = ok_json(
                read(
                    sb,
                    &format!("Patient/{patient}/$everything?_count=200"),
                    Some(token),
                )
                .await,
            )
            .await
            else {
                return false;
            };
            all_pages(first, token)
                .await
                .iter()
                .any(|p| match_ids(p).contains(lab))
        }
        "page token" => ok_json(get_url(&target.page, token).await)
            .await
            .is_some_and(|b| !match_ids(&b).is_empty()),
        "batch GET" | "transaction GET" => {
            let kind = operation.split(' ').next().unwrap();
            let entry =
                json!({ "request": { "method": "GET", "url": format!("Observation/{lab}") } });
            let resp = send(sb, Method::POST, "", token, Some(&bundle(kind, entry)), &[]).await;
            ok_json(resp).await.is_some_and(|b| {
                b["entry"][0]["response"]["status"]
                    .as_str()
                    .unwrap()
                    .starts_with("200")
                    && is_lab(&b["entry"][0]["resource"])
            })
        }
        "conditional create" => {
            let condition = format!("_id={lab}");
            let resp = send(
                sb,
                Method::POST,
                "Observation",
                token,
                Some(&new_observation()),
                &[("if-none-exist", &condition)],
            )
            .await;
            ok_json(resp).await.is_some_and(|r| is_lab(&r))
        }
        "batch conditional create" | "transaction conditional create" => {
            let kind = operation.split(' ').next().unwrap();
            let entry = json!({
                "resource": new_observation(),
                "request": { "method": "POST", "url": "Observation", "ifNoneExist": format!("_id={lab}") }
            });
            let resp = send(sb, Method::POST, "", token, Some(&bundle(kind, entry)), &[]).await;
            ok_json(resp).await.is_some_and(|b| {
                b["entry"][0]["response"]["status"]
                    .as_str()
                    .unwrap()
                    .starts_with("200")
                    && is_lab(&b["entry"][0]["resource"])
            })
        }
        other => panic!("no such operation {other}"),
    }
}

/// Every operation that returns stored resources, under every scope shape
/// (patient, user, system; v1 and v2; query scopes; create-only), against a
/// laboratory Observation inside (`pat-1`) and outside (`pat-2`) the
/// patient-scoped tokens' compartment. Each cell asserts allow or deny; all
/// disagreements are reported together.
#[tokio::test]
async fn every_operation_under_every_scope_shape() {
    let sb = start().await;
    register_writer(&sb);
    let admin = system_token(&sb, "system/*.rs").await;
    let targets = [
        target(&sb, &admin, "pat-1").await,
        target(&sb, &admin, "pat-2").await,
    ];
    let mut wrong = Vec::new();
    let mut cells = 0;
    for shape in SHAPES {
        let token = token_for(&sb, shape).await;
        for (t, target) in targets.iter().enumerate() {
            for operation in OPERATIONS {
                let expected = if operation.contains("conditional create") {
                    shape.sees[t] && shape.conditional
                } else {
                    shape.sees[t]
                };
                let shown = shows(&sb, &token, operation, target).await;
                cells += 1;
                if shown != expected {
                    wrong.push(format!(
                        "{:?} {:?} / {operation} / {}: expected {}, got {}",
                        shape.kind,
                        shape.scope,
                        target.patient,
                        if expected { "allow" } else { "deny" },
                        if shown { "allow" } else { "deny" }
                    ));
                }
            }
        }
    }
    assert_eq!(cells, SHAPES.len() * 2 * OPERATIONS.len());
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Item 11: `user/Observation.c` may create, but a conditional create's
/// match is a search, so without search scope it is refused before anything
/// is looked up; with search scope limited to a compartment, another
/// patient's match counts as absent (a new resource is created, nothing of
/// the other patient is returned).
#[tokio::test]
async fn conditional_create_needs_search_scope_and_respects_the_compartment() {
    let sb = start().await;
    register_writer(&sb);
    let admin = system_token(&sb, "system/*.rs").await;
    let other = target(&sb, &admin, "pat-2").await.lab;
    let condition = format!("_id={other}");

    let create_only = access_token(&sb, WRITER, "user/Observation.c").await;
    let resp = read(&sb, &format!("Observation/{other}"), Some(&create_only)).await;
    assert_eq!(resp.status(), 403);
    let resp = send(
        &sb,
        Method::POST,
        "Observation",
        &create_only,
        Some(&new_observation()),
        &[("if-none-exist", &condition)],
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(header(&resp, "www-authenticate").contains("insufficient_scope"));
    assert!(header(&resp, "www-authenticate").contains("user/Observation.s"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert!(!body.to_string().contains("laboratory"), "{body}");

    let patient = patient_token(&sb, "pat-1", "patient/Observation.crs").await;
    let resp = send(
        &sb,
        Method::POST,
        "Observation",
        &patient,
        Some(&new_observation()),
        &[("if-none-exist", &condition)],
    )
    .await;
    assert_eq!(resp.status(), 201, "another patient's match is absent");
    let created: Value = resp.json().await.unwrap();
    assert_ne!(created["id"], other.as_str());
    assert_eq!(created["subject"]["reference"], "Patient/pat-1");
    // Its own resource is still found.
    let mine = format!("_id={}", created["id"].as_str().unwrap());
    let resp = send(
        &sb,
        Method::POST,
        "Observation",
        &patient,
        Some(&new_observation()),
        &[("if-none-exist", &mine)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let found: Value = resp.json().await.unwrap();
    assert_eq!(found["id"], created["id"]);
}

/// Item 12, the exact scenario: a privileged client deletes `pat-2`'s
/// Observation; a client scoped to `pat-1` re-creates the same id under
/// `pat-1` (PUT create-on-update) and asks for its history. The re-creation
/// is a new lifetime starting at version 1, so neither the earlier content
/// nor the earlier version count (`ETag`, `meta.versionId`) reaches it.
#[tokio::test]
async fn a_recreated_id_shows_nothing_of_its_earlier_lifetime() {
    let sb = start().await;
    register_writer(&sb);
    let admin = system_token(&sb, "system/*.cruds").await;
    let other = target(&sb, &admin, "pat-2").await.lab;
    let original: Value = get_json(&sb, &format!("Observation/{other}"), &admin, 200).await;
    assert_eq!(original["subject"]["reference"], "Patient/pat-2");
    let resp = send(
        &sb,
        Method::DELETE,
        &format!("Observation/{other}"),
        &admin,
        None,
        &[],
    )
    .await;
    assert_eq!(resp.status(), 204);

    let patient = patient_token(&sb, "pat-1", "patient/Observation.cruds").await;
    let mut mine = new_observation();
    mine["id"] = json!(other);
    let resp = send(
        &sb,
        Method::PUT,
        &format!("Observation/{other}"),
        &patient,
        Some(&mine),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        header(&resp, "etag"),
        "W/\"1\"",
        "no earlier count in the ETag"
    );
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["meta"]["versionId"], "1");

    let resp = read(
        &sb,
        &format!("Observation/{other}/_history/1"),
        Some(&patient),
    )
    .await;
    assert_eq!(resp.status(), 200, "version 1 is pat-1's own");
    let v1: Value = resp.json().await.unwrap();
    assert_eq!(v1["subject"]["reference"], "Patient/pat-1");
    let resp = read(
        &sb,
        &format!("Observation/{other}/_history/2"),
        Some(&patient),
    )
    .await;
    assert_eq!(resp.status(), 404, "no version 2 in the new lifetime");

    let history = get_json(&sb, &format!("Observation/{other}/_history"), &patient, 200).await;
    let text = history.to_string();
    assert!(!text.contains("Patient/pat-2"), "{text}");
    let entries = history["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "only pat-1's version: {text}");
    assert_eq!(history["total"], 1);
    assert_eq!(entries[0]["response"]["etag"], "W/\"1\"");

    // The privileged client sees the same single lifetime.
    let all = get_json(&sb, &format!("Observation/{other}/_history"), &admin, 200).await;
    assert_eq!(all["entry"].as_array().unwrap().len(), 1);
}

/// Item 12 within one lifetime: a privileged client moves `pat-2`'s
/// Observation to `pat-1` (an update, no deletion). A client scoped to
/// `pat-1` may read the current version but not `pat-2`'s first one: `vread`
/// is a 403 and the history leaves it out.
#[tokio::test]
async fn history_does_not_carry_another_patients_versions() {
    let sb = start().await;
    register_writer(&sb);
    let admin = system_token(&sb, "system/*.cruds").await;
    let other = target(&sb, &admin, "pat-2").await.lab;
    let mut moved: Value = get_json(&sb, &format!("Observation/{other}"), &admin, 200).await;
    assert_eq!(moved["subject"]["reference"], "Patient/pat-2");
    moved["subject"]["reference"] = json!("Patient/pat-1");
    moved.as_object_mut().unwrap().remove("meta");
    let resp = send(
        &sb,
        Method::PUT,
        &format!("Observation/{other}"),
        &admin,
        Some(&moved),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);

    let patient = patient_token(&sb, "pat-1", "patient/Observation.rs").await;
    let resp = read(
        &sb,
        &format!("Observation/{other}/_history/1"),
        Some(&patient),
    )
    .await;
    assert_eq!(resp.status(), 403, "vread of pat-2's version");
    let history = get_json(&sb, &format!("Observation/{other}/_history"), &patient, 200).await;
    let text = history.to_string();
    assert!(!text.contains("Patient/pat-2"), "{text}");
    let entries = history["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "only pat-1's version: {text}");
    assert_eq!(
        entries[0]["resource"]["subject"]["reference"],
        "Patient/pat-1"
    );
    assert_eq!(entries[0]["response"]["etag"], "W/\"2\"");

    // A system token sees both versions.
    let all = get_json(&sb, &format!("Observation/{other}/_history"), &admin, 200).await;
    assert_eq!(all["entry"].as_array().unwrap().len(), 2);
}

/// Item 9: page tokens are signed; a forged or edited one (here with an
/// offset near `usize::MAX`, which used to overflow `offset + count`) is a
/// 400 OperationOutcome, never a panic; a genuine one still works.
#[tokio::test]
async fn forged_page_tokens_are_refused() {
    let sb = start().await;
    let token = user_token(&sb).await;
    let first = get_json(&sb, "Observation?patient=pat-1&_count=2", &token, 200).await;
    let next = link(&first, "next").expect("next");
    let resp = get_url(&next, &token).await;
    assert_eq!(resp.status(), 200);

    let (_, value) = next.split_once("_page=").unwrap();
    let forged_payloads = [
        json!({ "v": 1, "t": "Observation", "q": [["patient", "pat-1"], ["_count", "2"]], "o": usize::MAX }),
        json!({ "v": 1, "t": "$everything", "q": [["_id", "pat-1"], ["_count", "100000000"]], "o": usize::MAX - 1 }),
    ];
    let mut forged: Vec<String> = Vec::new();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for p in &forged_payloads {
        let payload = b64.encode(p.to_string());
        // Unsigned (the old format), and with the genuine token's MAC.
        forged.push(payload.clone());
        let mac = value.split_once('.').map_or("", |(_, m)| m);
        forged.push(format!("{payload}.{mac}"));
    }
    // The genuine token with one character of its signature changed.
    let mut tampered = value.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    forged.push(tampered);

    for f in forged {
        let url = format!("{}?_page={f}", sb.fhir_base());
        let resp = get_url(&url, &token).await;
        assert_eq!(resp.status(), 400, "{f}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    }
    // The sandbox is still serving.
    assert_eq!(get_url(&next, &token).await.status(), 200);
}
