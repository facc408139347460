//! The probe proves itself against the sandbox: the strict sandbox in every vendor profile has
//! no SHALL failure, and each defect switch adds exactly its own failed check(s) to that
//! profile's baseline and nothing else. All runs are independent sandboxes on 127.0.0.1 and
//! run concurrently.

use std::collections::{BTreeMap, BTreeSet};

use smart_conformance::model::{CheckResult, Status};
use smart_conformance::probe::{checks, probe_sandbox, sandbox_profiles};
use smart_sandbox::Behavior;

/// Each defect switch, and the check ids it must (alone) turn to failures.
fn defects() -> Vec<(&'static str, Behavior, &'static [&'static str])> {
    let on = |f: fn(&mut Behavior)| {
        let mut b = Behavior::default();
        f(&mut b);
        b
    };
    vec![
        (
            "accept_plain_pkce",
            on(|b| b.accept_plain_pkce = true),
            &["S-4.2"],
        ),
        (
            "omit_token_no_store",
            on(|b| b.omit_token_no_store = true),
            &["S-8.3"],
        ),
        (
            "accept_replayed_codes",
            on(|b| b.accept_replayed_codes = true),
            &["S-6.4"],
        ),
        (
            "accept_replayed_jti",
            on(|b| b.accept_replayed_jti = true),
            &["S-13.5"],
        ),
        (
            "skip_refresh_client_auth",
            on(|b| b.skip_refresh_client_auth = true),
            &["S-11.4"],
        ),
        ("ignore_aud", on(|b| b.ignore_aud = true), &["S-6.3"]),
        (
            "fhir_without_token",
            on(|b| b.fhir_without_token = true),
            &["S-10.1"],
        ),
        (
            "token_unavailable",
            on(|b| b.token_unavailable = 1),
            &["S-8.4"],
        ),
    ]
}

fn failures(results: &[CheckResult]) -> BTreeSet<&'static str> {
    results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail(_)))
        .map(|r| r.def.id)
        .collect()
}

fn show(results: &[CheckResult]) -> String {
    results
        .iter()
        .filter(|r| !matches!(r.status, Status::Pass))
        .map(|r| {
            format!(
                "{} {} {}: {}",
                r.subject,
                r.def.id,
                r.status.word(),
                r.status.detail()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_profiles_pass_and_each_defect_switch_adds_exactly_its_check() {
    let profiles = sandbox_profiles();
    assert!(profiles.iter().any(|(n, _)| n == "generic"), "{profiles:?}");
    let mut runs = Vec::new();
    for (name, profile) in &profiles {
        let (n, p) = (name.clone(), profile.clone());
        runs.push((
            name.clone(),
            None,
            tokio::spawn(async move { probe_sandbox(&n, p, Behavior::default()).await }),
        ));
        for (switch, behavior, _) in defects() {
            let (n, p) = (name.clone(), profile.clone());
            runs.push((
                name.clone(),
                Some(switch),
                tokio::spawn(async move { probe_sandbox(&n, p, behavior).await }),
            ));
        }
    }
    let mut baselines: BTreeMap<String, Vec<CheckResult>> = BTreeMap::new();
    let mut defect_runs = Vec::new();
    for (name, switch, run) in runs {
        let results = run.await.expect("probe task").expect("sandbox starts");
        assert_eq!(results.len(), checks::ALL.len(), "one result per check");
        match switch {
            None => {
                baselines.insert(name, results);
            }
            Some(s) => defect_runs.push((name, s, results)),
        }
    }

    let mut problems = Vec::new();
    for (name, results) in &baselines {
        // What each strict profile does not pass, for the log (`--nocapture`).
        eprintln!("sandbox/{name}, strict:\n{}\n", show(results));
        if results.iter().any(CheckResult::fails_run) {
            problems.push(format!(
                "strict sandbox/{name} has SHALL failures:\n{}",
                show(results)
            ));
        }
        // Vendor profiles are recognised as their adapter, with its catalogue rows.
        let vendor = results
            .iter()
            .find(|r| r.def.id == checks::S_0_1.id)
            .expect("S-0.1");
        if name != "generic" {
            let detail = vendor.status.detail();
            if !(detail.contains(&format!("recognised as `{name}`")) && detail.contains("row ")) {
                problems.push(format!("sandbox/{name} S-0.1: {detail}"));
            }
        }
        // The probe really ran: the core checks passed rather than being skipped.
        for id in [
            checks::S_4_1.id,
            checks::S_4_2.id,
            checks::S_6_3.id,
            checks::S_6_4.id,
            checks::S_8_3.id,
            checks::S_10_1.id,
            checks::S_11_4.id,
            checks::S_13_5.id,
        ] {
            let r = results.iter().find(|r| r.def.id == id).expect("reported");
            if r.status != Status::Pass {
                problems.push(format!(
                    "sandbox/{name} {id} did not pass:\n{}",
                    show(results)
                ));
            }
        }
    }

    let expected: BTreeMap<&str, &[&str]> =
        defects().into_iter().map(|(s, _, ids)| (s, ids)).collect();
    for (name, switch, results) in &defect_runs {
        let baseline = failures(&baselines[name]);
        let mut want = baseline.clone();
        want.extend(expected[switch].iter().copied());
        if failures(results) != want {
            problems.push(format!(
                "sandbox/{name} with {switch}: expected the baseline plus {:?}\n{}",
                expected[switch],
                show(results)
            ));
        }
        for id in expected[*switch] {
            assert!(checks::ALL.iter().any(|c| c.id == *id), "{id} is a check");
            assert!(!baseline.contains(id), "{name}: {id} already fails strict");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
