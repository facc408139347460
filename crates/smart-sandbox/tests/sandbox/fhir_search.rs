//! FHIR search: parameters, date prefixes, sorting, paging, `_include`,
//! outcome entries, determinism.

use std::collections::HashSet;

use serde_json::Value;
use smart_sandbox::{Sandbox, SandboxConfig};

use crate::common::*;

const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

fn subject(r: &Value) -> &str {
    r["subject"]["reference"]
        .as_str()
        .or_else(|| r["patient"]["reference"].as_str())
        .unwrap_or("")
}

fn codes(r: &Value) -> Vec<String> {
    r["code"]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect()
}

fn category(r: &Value) -> &str {
    r["category"][0]["coding"][0]["code"].as_str().unwrap()
}

fn effective(r: &Value) -> &str {
    r["effectiveDateTime"].as_str().unwrap()
}

#[tokio::test]
async fn search_by_patient_subject_category_code_status_and_id() {
    let sb = start().await;
    let t = user_token(&sb).await;

    let labs = get_json(
        &sb,
        "Observation?patient=pat-1&category=laboratory&_count=200",
        &t,
        200,
    )
    .await;
    assert_eq!(labs["resourceType"], "Bundle");
    assert_eq!(labs["type"], "searchset");
    let n = total(&labs);
    assert!(n >= 60, "{n}");
    for r in matches(&labs) {
        assert_eq!(subject(r), "Patient/pat-1");
        assert_eq!(category(r), "laboratory");
        assert!(r["valueQuantity"]["value"].is_f64(), "{r}");
        assert_eq!(r["valueQuantity"]["system"], "http://unitsofmeasure.org");
    }
    for e in labs["entry"].as_array().unwrap() {
        assert!(
            e["fullUrl"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}/Observation/", sb.fhir_base()))
        );
    }
    // The same with a system, with `subject`, and with `Patient/…`.
    for query in [
        format!("Observation?patient=pat-1&category={CATEGORY}%7Claboratory"),
        "Observation?subject=Patient/pat-1&category=laboratory".to_owned(),
        "Observation?patient=Patient/pat-1&category=laboratory".to_owned(),
        "Observation?subject:Patient=pat-1&category=laboratory".to_owned(),
    ] {
        assert_eq!(total(&get_json(&sb, &query, &t, 200).await), n, "{query}");
    }
    // A wrong system matches nothing.
    let none = get_json(
        &sb,
        "Observation?patient=pat-1&category=http://x|laboratory",
        &t,
        200,
    )
    .await;
    assert_eq!(total(&none), 0);

    // code: system|code, bare code, and comma = OR.
    let hr = get_json(
        &sb,
        "Observation?patient=pat-1&code=http://loinc.org|8867-4",
        &t,
        200,
    )
    .await;
    let glucose = get_json(&sb, "Observation?patient=pat-1&code=2339-0", &t, 200).await;
    let both = get_json(
        &sb,
        "Observation?patient=pat-1&code=http://loinc.org|8867-4,2339-0&_count=200",
        &t,
        200,
    )
    .await;
    assert!(total(&hr) >= 20);
    assert_eq!(total(&both), total(&hr) + total(&glucose));
    for r in matches(&both) {
        let c = codes(r);
        assert!(c == ["8867-4"] || c == ["2339-0"], "{c:?}");
    }
    // Blood pressure is a panel with components.
    let bp = get_json(
        &sb,
        "Observation?patient=pat-1&code=85354-9&_count=1",
        &t,
        200,
    )
    .await;
    let panel = matches(&bp)[0];
    assert_eq!(panel["component"][0]["code"]["coding"][0]["code"], "8480-6");
    assert_eq!(panel["component"][1]["code"]["coding"][0]["code"], "8462-4");
    assert_eq!(panel["component"][0]["valueQuantity"]["code"], "mm[Hg]");

    // status partitions the patient's observations.
    let all = total(&get_json(&sb, "Observation?patient=pat-1&_count=0", &t, 200).await);
    let final_ = total(
        &get_json(
            &sb,
            "Observation?patient=pat-1&status=final&_count=0",
            &t,
            200,
        )
        .await,
    );
    let amended = total(
        &get_json(
            &sb,
            "Observation?patient=pat-1&status=amended&_count=0",
            &t,
            200,
        )
        .await,
    );
    assert_eq!(final_ + amended, all);
    assert!(all >= 180, "{all}");

    // _id, several.
    let two = get_json(&sb, "Observation?_id=obs-1-1,obs-2-1", &t, 200).await;
    let mut ids = match_ids(&two);
    ids.sort();
    assert_eq!(ids, ["obs-1-1", "obs-2-1"]);

    // Other types.
    let active = get_json(
        &sb,
        "Condition?patient=pat-1&clinical-status=active",
        &t,
        200,
    )
    .await;
    assert!(total(&active) >= 1);
    for r in matches(&active) {
        assert_eq!(r["clinicalStatus"]["coding"][0]["code"], "active");
    }
    let resolved = get_json(
        &sb,
        "Condition?patient=pat-1&clinical-status=resolved",
        &t,
        200,
    )
    .await;
    assert!(total(&resolved) >= 1);
    let meds = get_json(
        &sb,
        "MedicationRequest?patient=pat-1&status=active",
        &t,
        200,
    )
    .await;
    for r in matches(&meds) {
        assert_eq!(r["status"], "active");
        assert_eq!(
            r["medicationCodeableConcept"]["coding"][0]["system"],
            "http://www.nlm.nih.gov/research/umls/rxnorm"
        );
    }
    let allergies = get_json(&sb, "AllergyIntolerance?patient=pat-1", &t, 200).await;
    assert!(total(&allergies) >= 1);
    let encounters = get_json(&sb, "Encounter?patient=pat-1", &t, 200).await;
    assert_eq!(total(&encounters), 3);
    let women = get_json(&sb, "Patient?gender=female&name=amel", &t, 200).await;
    assert!(match_ids(&women).contains(&"pat-1".to_owned()));
    let practitioners = get_json(&sb, "Practitioner", &t, 200).await;
    assert_eq!(total(&practitioners), 10);
}

#[tokio::test]
async fn date_prefixes_and_sorting() {
    let sb = start().await;
    let t = user_token(&sb).await;
    let q = "Observation?patient=pat-1&code=8867-4&_count=200";

    let asc = get_json(&sb, &format!("{q}&_sort=date"), &t, 200).await;
    let dates: Vec<&str> = matches(&asc).iter().map(|r| effective(r)).collect();
    assert!(dates.len() >= 20);
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
    let desc = get_json(&sb, &format!("{q}&_sort=-date"), &t, 200).await;
    let rdates: Vec<&str> = matches(&desc).iter().map(|r| effective(r)).collect();
    assert!(rdates.windows(2).all(|w| w[0] >= w[1]), "{rdates:?}");
    let mut reversed = rdates.clone();
    reversed.reverse();
    assert_eq!(reversed, dates);

    let n = dates.len() as u64;
    let pivot = dates[dates.len() / 2]; // e.g. 2024-05-02T10:17:00Z
    let day = &pivot[..10];
    let count = |query: String| {
        let sb = &sb;
        let t = &t;
        async move { get_json(sb, &query, t, 200).await }
    };
    let ge = count(format!("{q}&date=ge{pivot}")).await;
    let lt = count(format!("{q}&date=lt{pivot}")).await;
    assert_eq!(total(&ge) + total(&lt), n);
    assert!(matches(&ge).iter().all(|r| effective(r) >= pivot));
    assert!(matches(&lt).iter().all(|r| effective(r) < pivot));
    let gt = count(format!("{q}&date=gt{pivot}")).await;
    let le = count(format!("{q}&date=le{pivot}")).await;
    assert_eq!(total(&gt) + total(&le), n);
    assert!(matches(&gt).iter().all(|r| effective(r) > pivot));
    let eq = count(format!("{q}&date=eq{pivot}")).await;
    let ne = count(format!("{q}&date=ne{pivot}")).await;
    assert!(total(&eq) >= 1);
    assert_eq!(total(&eq) + total(&ne), n);
    // Day precision: eq is "within that day", sa/eb are strictly after/before.
    let on_day = count(format!("{q}&date={day}")).await;
    assert!(
        matches(&on_day)
            .iter()
            .all(|r| effective(r).starts_with(day))
    );
    assert!(total(&on_day) >= 1);
    let sa = count(format!("{q}&date=sa{day}")).await;
    let eb = count(format!("{q}&date=eb{day}")).await;
    assert_eq!(total(&sa) + total(&eb) + total(&on_day), n);
    assert!(matches(&sa).iter().all(|r| &effective(r)[..10] > day));
    assert!(matches(&eb).iter().all(|r| &effective(r)[..10] < day));
    // A range: two date parameters are ANDed; a year is a range too.
    let year = &pivot[..4];
    let range = count(format!(
        "{q}&date=ge{year}-01-01&date=lt{year}-12-31T23:59:59Z"
    ))
    .await;
    let whole_year = count(format!("{q}&date={year}")).await;
    assert!(total(&range) <= total(&whole_year));
    assert!(
        matches(&whole_year)
            .iter()
            .all(|r| effective(r).starts_with(year))
    );

    // Encounters, conditions and medication requests have dates too.
    let enc = count("Encounter?patient=pat-1&date=ge2000-01-01&_sort=-date".into()).await;
    assert_eq!(total(&enc), 3);
    let starts: Vec<&str> = matches(&enc)
        .iter()
        .map(|r| r["period"]["start"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]));
    let future = count("MedicationRequest?patient=pat-1&date=gt2100".into()).await;
    assert_eq!(total(&future), 0);
    let cond = count("Condition?patient=pat-1&date=le2100-01-01".into()).await;
    assert!(total(&cond) >= 3);

    // Malformed values are errors, not silently ignored.
    let resp = read(&sb, "Observation?date=ge2024-13-01", Some(&t)).await;
    assert_eq!(resp.status(), 400);
    let oo: Value = resp.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(
        read(&sb, "Observation?_count=lots", Some(&t))
            .await
            .status(),
        400
    );
}

/// Just what paging needs from a page; skipping the resources' contents
/// keeps this 35-page walk fast in a debug build.
#[derive(serde::Deserialize)]
struct Page {
    total: u64,
    link: Vec<PageLink>,
    entry: Vec<PageEntry>,
}

#[derive(serde::Deserialize)]
struct PageLink {
    relation: String,
    url: String,
}

#[derive(serde::Deserialize)]
struct PageEntry {
    resource: PageResource,
    search: PageSearch,
}

#[derive(serde::Deserialize)]
struct PageResource {
    id: String,
}

#[derive(serde::Deserialize)]
struct PageSearch {
    mode: String,
}

#[tokio::test]
async fn paging_over_every_observation_with_a_system_token() {
    let sb = start().await;
    let t = system_token(&sb, "system/Observation.rs").await;
    // Without gzip: compression is slow in debug builds and checked below.
    let client = reqwest::Client::builder()
        .gzip(false)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut url = Some(format!("{}/Observation?_count=200", sb.fhir_base()));
    let mut ids = HashSet::new();
    let mut expected = None;
    let mut pages = 0;
    while let Some(u) = url.take() {
        let resp = client.get(&u).bearer_auth(&t).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{u}");
        let page: Page = resp.json().await.unwrap();
        assert_eq!(*expected.get_or_insert(page.total), page.total);
        for e in &page.entry {
            assert_eq!(e.search.mode, "match");
            assert!(
                ids.insert(e.resource.id.clone()),
                "duplicate {}",
                e.resource.id
            );
        }
        url = page
            .link
            .into_iter()
            .find(|l| l.relation == "next")
            .map(|l| l.url);
        pages += 1;
        assert!(pages < 100, "paging does not end");
    }
    let expected = expected.unwrap();
    assert!(expected > 5_000, "{expected}");
    assert_eq!(ids.len() as u64, expected);
    assert_eq!(pages, expected.div_ceil(200));
    // Default and maximum page sizes.
    let default = get_json(&sb, "Observation", &t, 200).await;
    assert_eq!(matches(&default).len(), 50);
    let clamped = get_json(&sb, "Observation?_count=5000", &t, 200).await;
    assert_eq!(matches(&clamped).len(), 200);
    // Responses are gzip-compressed for clients that ask.
    let resp = client
        .get(format!("{}/Observation?_count=20", sb.fhir_base()))
        .bearer_auth(&t)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "content-encoding"), "gzip");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
}

#[tokio::test]
async fn next_links_are_opaque_and_previous_goes_back() {
    let sb = start().await;
    let t = user_token(&sb).await;
    let first = get_json(
        &sb,
        "Observation?patient=pat-1&code=http://loinc.org|8867-4&_count=5&_sort=date",
        &t,
        200,
    )
    .await;
    let next = link(&first, "next").expect("next");
    assert!(
        next.starts_with(&format!("{}?_page=", sb.fhir_base())),
        "{next}"
    );
    for text in [
        "patient", "pat-1", "8867-4", "loinc", "_count", "_sort", "code",
    ] {
        assert!(!next.contains(text), "{next} contains {text}");
    }
    assert!(link(&first, "previous").is_none());
    // self lists the applied parameters.
    let own = link(&first, "self").unwrap();
    assert!(
        own.contains("patient=pat-1") && own.contains("_count=5"),
        "{own}"
    );

    let second: Value = get_url(&next, &t).await.json().await.unwrap();
    assert_eq!(matches(&second).len(), 5);
    assert_eq!(total(&second), total(&first));
    let first_dates: Vec<&str> = matches(&first).iter().map(|r| effective(r)).collect();
    let second_dates: Vec<&str> = matches(&second).iter().map(|r| effective(r)).collect();
    assert!(first_dates.last() <= second_dates.first());
    let previous = link(&second, "previous").expect("previous");
    let back: Value = get_url(&previous, &t).await.json().await.unwrap();
    assert_eq!(match_ids(&back), match_ids(&first));

    // A forged token is refused.
    let resp = get_url(&format!("{}?_page=garbage", sb.fhir_base()), &t).await;
    assert_eq!(resp.status(), 400);
    // Paging still needs the token.
    assert_eq!(http().get(&next).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn include_outcome_entries_and_post_search() {
    let sb = start().await;
    let t = user_token(&sb).await;
    let b = get_json(
        &sb,
        "Observation?patient=pat-2&_count=5&_include=Observation:patient",
        &t,
        200,
    )
    .await;
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(matches(&b).len(), 5);
    let included: Vec<&Value> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(included.len(), 1);
    assert_eq!(included[0]["resource"]["resourceType"], "Patient");
    assert_eq!(included[0]["resource"]["id"], "pat-2");
    assert_eq!(
        included[0]["fullUrl"],
        format!("{}/Patient/pat-2", sb.fhir_base())
    );
    for q in [
        "Condition?patient=pat-2&_include=*:patient",
        "Encounter?patient=pat-2&_include=*:subject",
    ] {
        let b = get_json(&sb, q, &t, 200).await;
        let n = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["search"]["mode"] == "include")
            .count();
        assert_eq!(n, usize::from(total(&b) > 0), "{q}");
    }

    // An unknown parameter is ignored and reported as an outcome entry.
    let with = get_json(&sb, "Observation?patient=pat-1&foo=bar&_count=3", &t, 200).await;
    let without = get_json(&sb, "Observation?patient=pat-1&_count=3", &t, 200).await;
    assert_eq!(total(&with), total(&without));
    let outcomes: Vec<&Value> = with["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "outcome")
        .collect();
    assert_eq!(outcomes.len(), 1);
    let oo = &outcomes[0]["resource"];
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["severity"], "warning");
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("parameter foo not supported")
    );
    assert!(!link(&with, "self").unwrap().contains("foo"));
    assert_eq!(match_ids(&with), match_ids(&without));
    // Prefer: handling=strict turns it into an error.
    let resp = http()
        .get(format!("{}/Observation?foo=bar", sb.fhir_base()))
        .bearer_auth(&t)
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // POST _search with a form body gives the same result as GET.
    let resp = http()
        .post(format!("{}/Observation/_search", sb.fhir_base()))
        .bearer_auth(&t)
        .form(&[("patient", "pat-1"), ("category", "laboratory")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/fhir+json");
    let posted: Value = resp.json().await.unwrap();
    let got = get_json(
        &sb,
        "Observation?patient=pat-1&category=laboratory",
        &t,
        200,
    )
    .await;
    assert_eq!(total(&posted), total(&got));
    assert_eq!(match_ids(&posted), match_ids(&got));
}

async fn body_text(sb: &Sandbox, token: &str, path: &str) -> String {
    let resp = read(sb, path, Some(token)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap().replace(&sb.fhir_base(), "BASE");
    // Page tokens carry a signature with a per-sandbox random key: keep the
    // signed content, drop the signature.
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("_page=") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let end = tail.find('"').unwrap_or(tail.len());
        let token = &tail[..end];
        out.push_str(token.split_once('.').map_or(token, |(payload, _)| payload));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn same_seed_same_bytes_other_seed_other_data() {
    let config = |seed: u64| SandboxConfig {
        seed,
        patient_count: 60,
        data_as_of: Some("2025-06-30".into()),
        ..SandboxConfig::default()
    };
    let (a, b, c) = (
        start_with(config(42)).await,
        start_with(config(42)).await,
        start_with(config(43)).await,
    );
    let (ta, tb, tc) = (
        user_token(&a).await,
        user_token(&b).await,
        user_token(&c).await,
    );
    for path in [
        "Observation?patient=pat-7&_count=100",
        "Patient?_count=40&_sort=_id",
        "Condition?patient=pat-1",
        "Observation?_count=20&_sort=-date",
    ] {
        let (x, y, z) = (
            body_text(&a, &ta, path).await,
            body_text(&b, &tb, path).await,
            body_text(&c, &tc, path).await,
        );
        assert_eq!(x, y, "{path}");
        assert_ne!(x, z, "{path}");
    }
    // The named patients do not depend on the seed; the others do.
    let p1a = get_json(&a, "Patient/pat-1", &ta, 200).await;
    let p1c = get_json(&c, "Patient/pat-1", &tc, 200).await;
    assert_eq!(p1a, p1c);
    assert_eq!(p1a["name"][0]["text"], "Amelia Rose Rivera");
    let p9a = get_json(&a, "Patient/pat-9", &ta, 200).await;
    let p9c = get_json(&c, "Patient/pat-9", &tc, 200).await;
    assert_ne!(p9a["name"], p9c["name"]);
    // Dates end before the as-of day.
    let latest = get_json(&a, "Observation?_sort=-date&_count=1", &ta, 200).await;
    assert!(effective(matches(&latest)[0]) < "2025-06-30");
    assert!(effective(matches(&latest)[0]) > "2025-05-01");
}
