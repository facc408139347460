//! Discovery checks (S-1 to S-3): the `.well-known/smart-configuration` document, its required
//! fields and types, and whether its promises agree with each other.

use serde_json::{Map, Value};

use super::checks::*;
use super::runner::Runner;
use super::wire::{excerpt, str_of};
use crate::model::Status;

/// Endpoint members that must hold absolute URLs when present.
const URL_FIELDS: &[&str] = &[
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "management_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "issuer",
    "user_access_brand_bundle",
];

/// The most array members the probe reads from one configuration field.
const MAX_ARRAY: usize = 1024;

/// A member that must be an array of strings: its strings, or why not.
fn string_array(config: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match config.get(key) {
        None => Err(format!("`{key}` is missing")),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items.iter().take(MAX_ARRAY) {
                match item.as_str() {
                    Some(s) => out.push(s.to_owned()),
                    None => return Err(format!("`{key}` has a member that is not a string")),
                }
            }
            Ok(out)
        }
        Some(_) => Err(format!("`{key}` is not an array")),
    }
}

fn pass_or(result: Result<(), String>) -> Status {
    match result {
        Ok(()) => Status::Pass,
        Err(e) => Status::Fail(e),
    }
}

impl Runner<'_> {
    /// Fetches and checks the configuration; `false` when there is none to go on with.
    pub(crate) async fn discover(&mut self) -> bool {
        let url = format!("{}/.well-known/smart-configuration", self.target.base());
        let reply = match self.wire.get(&url, &[("accept", "application/json")]).await {
            Ok(r) => r,
            Err(e) => {
                self.set(&S_1_1, Status::Fail(e));
                self.skip_all(super::checks::ALL, "discovery failed (S-1.1)");
                return false;
            }
        };
        let content_type = reply.header("content-type").to_ascii_lowercase();
        let Some(config) = reply.json_object().filter(|_| reply.status == 200) else {
            self.set(
                &S_1_1,
                Status::Fail(format!(
                    "{} with Content-Type {:?}, not a JSON object",
                    reply.describe(),
                    excerpt(&content_type)
                )),
            );
            self.skip_all(super::checks::ALL, "discovery failed (S-1.1)");
            return false;
        };
        self.set(
            &S_1_1,
            if content_type.starts_with("application/json") {
                Status::Pass
            } else {
                Status::Fail(format!(
                    "Content-Type is {:?}, not application/json",
                    excerpt(&content_type)
                ))
            },
        );

        let html = self.wire.get(&url, &[("accept", "text/html")]).await;
        self.set(
            &S_1_2,
            match html {
                Ok(r) if r.status == 200 && r.json_object().is_some() => Status::Pass,
                Ok(r) => Status::Fail(format!(
                    "with `Accept: text/html`: {} and no JSON object",
                    r.describe()
                )),
                Err(e) => Status::Fail(e),
            },
        );

        let relative: Vec<&str> = URL_FIELDS
            .iter()
            .copied()
            .filter(|k| {
                str_of(&config, k).is_some_and(|v| {
                    url::Url::parse(v).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
                })
            })
            .collect();
        self.set(
            &S_1_3,
            if relative.is_empty() {
                Status::Pass
            } else {
                Status::Fail(format!("not absolute: {}", relative.join(", ")))
            },
        );

        let token = str_of(&config, "token_endpoint").map(str::to_owned);
        self.set(
            &S_2_1,
            if token.is_some() {
                Status::Pass
            } else {
                Status::Fail("`token_endpoint` is missing or not a string".into())
            },
        );
        let capabilities = string_array(&config, "capabilities");
        self.set(
            &S_2_2,
            pass_or(capabilities.as_ref().map(|_| ()).map_err(Clone::clone)),
        );
        let capabilities = capabilities.unwrap_or_default();
        let grants = string_array(&config, "grant_types_supported");
        self.set(
            &S_2_3,
            pass_or(grants.as_ref().map(|_| ()).map_err(Clone::clone)),
        );
        let grants = grants.unwrap_or_default();
        self.set(
            &S_2_4,
            pass_or(
                string_array(&config, "code_challenge_methods_supported").and_then(|m| {
                    if m.iter().any(|x| x == "plain") {
                        Err("`plain` is advertised".into())
                    } else if !m.iter().any(|x| x == "S256") {
                        Err("`S256` is not advertised".into())
                    } else {
                        Ok(())
                    }
                }),
            ),
        );
        let has = |c: &str| capabilities.iter().any(|x| x == c);
        let launches = has("launch-ehr") || has("launch-standalone");
        let authorize = str_of(&config, "authorization_endpoint").map(str::to_owned);
        self.set(
            &S_2_5,
            if !launches {
                Status::NotApplicable("no launch-* capability".into())
            } else if authorize.is_some() {
                Status::Pass
            } else {
                Status::Fail("`authorization_endpoint` is missing or not a string".into())
            },
        );
        self.set(
            &S_2_6,
            if !has("sso-openid-connect") {
                Status::NotApplicable("`sso-openid-connect` is not advertised".into())
            } else {
                let missing: Vec<&str> = ["issuer", "jwks_uri"]
                    .into_iter()
                    .filter(|k| str_of(&config, k).is_none())
                    .collect();
                if missing.is_empty() {
                    Status::Pass
                } else {
                    Status::Fail(format!("missing or not strings: {}", missing.join(", ")))
                }
            },
        );
        self.set(
            &S_3_1,
            if !has("client-confidential-asymmetric") {
                Status::NotApplicable("`client-confidential-asymmetric` is not advertised".into())
            } else {
                let methods =
                    string_array(&config, "token_endpoint_auth_methods_supported").unwrap_or_default();
                let algs = string_array(&config, "token_endpoint_auth_signing_alg_values_supported")
                    .unwrap_or_default();
                let mut problems = Vec::new();
                if !methods.iter().any(|m| m == "private_key_jwt") {
                    problems.push("`token_endpoint_auth_methods_supported` lacks `private_key_jwt`");
                }
                if !algs.iter().any(|a| a == "RS384" || a == "ES384") {
                    problems.push(
                        "`token_endpoint_auth_signing_alg_values_supported` has neither RS384 nor ES384",
                    );
                }
                if problems.is_empty() {
                    Status::Pass
                } else {
                    Status::Fail(problems.join("; "))
                }
            },
        );
        let mut incoherent = Vec::new();
        if launches && !grants.iter().any(|g| g == "authorization_code") {
            incoherent.push("launch capabilities without `authorization_code`");
        }
        if has("permission-offline") && !grants.iter().any(|g| g == "refresh_token") {
            incoherent.push("`permission-offline` without `refresh_token`");
        }
        self.set(
            &S_3_2,
            if incoherent.is_empty() {
                Status::Pass
            } else {
                Status::Fail(format!("grant_types_supported: {}", incoherent.join("; ")))
            },
        );

        self.endpoints.authorize = authorize;
        self.endpoints.token = token;
        self.endpoints.introspect = str_of(&config, "introspection_endpoint").map(str::to_owned);
        self.endpoints.capabilities = capabilities;
        self.endpoints.config = config;
        if self.endpoints.token.is_none() {
            self.skip_all(
                super::checks::ALL,
                "the configuration has no token_endpoint",
            );
            return false;
        }
        true
    }
}
