//! RFC 9207 in every profile: the configuration advertises
//! `authorization_response_iss_parameter_supported`, and every authorization
//! response that reaches the app (a code, a denial, a redirected error)
//! carries `iss`, the configuration's `issuer`, which differs per profile
//! (Epic: `…/oauth2`; Cerner: the tenant URL).

use std::collections::HashMap;

use serde_json::Value;
use smart_sandbox::{LaunchDefaults, SandboxConfig, VendorProfile};

use crate::common::*;

const SCOPE: &str = "openid fhirUser user/Patient.rs";

#[tokio::test]
async fn every_profile_sends_iss_in_authorization_responses() {
    for name in ["generic", "epic", "cerner"] {
        let mut config = SandboxConfig {
            profile: VendorProfile::builtin(name).expect("profile"),
            ..SandboxConfig::default()
        };
        // A third client the user always denies.
        let mut denier = config.clients[0].clone();
        denier.client_id = "denier".into();
        denier.context = LaunchDefaults {
            approve: false,
            ..LaunchDefaults::default()
        };
        config.clients.push(denier);
        let redirects_errors = config.profile.authorize_errors_redirect;
        let sb = start_with(config).await;

        let doc: Value = http()
            .get(format!(
                "{}/.well-known/smart-configuration",
                sb.fhir_base()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            doc["authorization_response_iss_parameter_supported"], true,
            "{name}"
        );
        let issuer = doc["issuer"].as_str().expect("issuer").to_owned();
        let authorize_url = doc["authorization_endpoint"].as_str().unwrap().to_owned();
        let answer = |client: &'static str, scope: &'static str| {
            let p = pkce();
            let params = auth_params(&sb, client, scope, &p);
            let url = authorize_url.clone();
            async move {
                let resp = http().get(url).query(&params).send().await.unwrap();
                redirect_params(&resp)
            }
        };

        let q: HashMap<String, String> = answer(PUBLIC, SCOPE).await;
        assert!(q.contains_key("code"), "{name}: {q:?}");
        assert_eq!(q.get("iss"), Some(&issuer), "{name}: code response");

        let q = answer("denier", SCOPE).await;
        assert_eq!(q["error"], "access_denied", "{name}");
        assert_eq!(q.get("iss"), Some(&issuer), "{name}: denial");

        // Epic shows other errors as a page (no response reaches the app);
        // where errors redirect, they name the issuer too.
        if redirects_errors {
            let q = answer(PUBLIC, "system/Patient.rs").await;
            assert!(q.contains_key("error"), "{name}: {q:?}");
            assert_eq!(q.get("iss"), Some(&issuer), "{name}: error response");
        }
    }
}
