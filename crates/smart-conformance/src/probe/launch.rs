//! App-launch checks: the authorization request and its negative variants (PKCE, `state`,
//! `redirect_uri`, `aud`), codes (single use, binding), token responses, refresh, OpenID
//! Connect, the FHIR resource server's token and scope enforcement, and introspection.
//!
//! Each negative check gets its own fresh code or grant, so that one defect never changes what
//! another check sees (a refresh that wrongly succeeds rotates a token another check would use).

use serde_json::{Map, Value};

use super::AppClient;
use super::checks::*;
use super::runner::{Pkce, Runner, random_string};
use super::wire::{excerpt, scopes_of, str_of};
use crate::model::{CheckDef, Status};

/// Checks that need a code.
const NEED_CODE: &[&CheckDef] = &[
    &S_4_1, &S_4_2, &S_4_3, &S_4_4, &S_6_1, &S_6_2, &S_6_3, &S_6_4, &S_6_5, &S_6_6, &S_6_7, &S_6_8,
    &S_8_1, &S_8_2, &S_8_5, &S_9_1, &S_10_1, &S_10_2, &S_10_3, &S_10_4, &S_10_5, &S_11_1, &S_11_2,
    &S_11_3, &S_11_4, &S_11_5, &S_11_6, &S_12_1, &S_12_2, &S_12_3, &S_12_4, &S_15_1, &S_15_2,
];

/// FHIR resource types `fhirUser` may name.
const FHIR_USER_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Person",
];

/// Private members a published JWK must not carry.
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A `state` with characters that need encoding, so that an echo is shown to be exact.
fn tricky_state() -> String {
    format!("{}~ /+=?&%", random_string(16))
}

/// Whether `scope` is a resource scope (`patient/…`, `user/…`, `system/…`).
fn is_resource_scope(scope: &str) -> bool {
    ["patient/", "user/", "system/"]
        .iter()
        .any(|p| scope.starts_with(p))
}

/// The resource type of a resource scope (`patient/Observation.rs` → `Observation`).
fn scope_type(scope: &str) -> &str {
    let after = scope.split_once('/').map_or(scope, |(_, r)| r);
    after.split(['.', '?']).next().unwrap_or("")
}

/// Whether every scope in `granted` is in `allowed`.
fn within(granted: &[String], allowed: &[String]) -> Result<(), String> {
    match granted.iter().find(|s| !allowed.contains(s)) {
        Some(extra) => Err(format!("`{}` was not asked for", excerpt(extra))),
        None => Ok(()),
    }
}

/// Whether an answer refused the request (no token issued).
fn refused(reply: &Result<super::wire::Reply, String>) -> Result<bool, String> {
    match reply {
        Ok(r) => Ok(!r.ok()),
        Err(e) => Err(e.clone()),
    }
}

impl Runner<'_> {
    pub(crate) async fn launch_checks(&mut self) {
        if self.endpoints.authorize.is_none() {
            self.skip_all(NEED_CODE, "the server has no authorization_endpoint");
            return;
        }
        let app = self.target.app.clone();
        let scope = self.target.scopes.clone();

        // The conformant launch: S-4.1, S-6.1, S-8.x, S-9.1, and the grant the later checks use.
        let pkce = Pkce::new();
        let mut request = self.auth_request(&app, &scope, &pkce);
        let state = tricky_state();
        request.set("state", Some(&state));
        let outcome = match self.authorize(&request, false).await {
            Ok(o) => o,
            Err(e) => {
                self.skip_all(NEED_CODE, &format!("no authorization was possible: {e}"));
                return;
            }
        };
        let Some(code) = outcome.code().map(str::to_owned) else {
            let why = format!(
                "the approver got no code for a conformant request ({}); approval does not work for this server",
                outcome.describe()
            );
            self.skip_all(NEED_CODE, &why);
            return;
        };
        self.set(
            &S_6_1,
            match outcome.param("state") {
                Some(s) if s == state => Status::Pass,
                Some(s) => Status::Fail(format!(
                    "sent {:?}, got back {:?}",
                    excerpt(&state),
                    excerpt(s)
                )),
                None => Status::Fail("the redirect has no `state`".into()),
            },
        );
        let reply = match self.exchange(&app, &code, Some(&pkce.verifier)).await {
            Ok(r) => r,
            Err(e) => {
                self.set(&S_4_1, Status::Fail(e.clone()));
                self.skip_all(NEED_CODE, &format!("the code exchange failed: {e}"));
                return;
            }
        };
        let Some(body) = reply
            .json_object()
            .filter(|m| reply.ok() && str_of(m, "access_token").is_some())
        else {
            let why = reply.describe();
            self.set(&S_4_1, Status::Fail(format!("the exchange failed: {why}")));
            self.skip_all(NEED_CODE, &format!("the code exchange failed: {why}"));
            return;
        };
        self.set(&S_4_1, Status::Pass);
        self.token_body_checks(&body, &scopes_of_request(&scope), "code exchange");
        let granted = scopes_of(&body);
        let patient = str_of(&body, "patient").map(str::to_owned);
        self.set(
            &S_9_1,
            if !granted.iter().any(|s| s == "launch/patient") {
                Status::NotApplicable("`launch/patient` was not granted".into())
            } else if patient.as_deref().is_some_and(|p| !p.is_empty()) {
                Status::Pass
            } else {
                Status::Fail("`launch/patient` was granted without a `patient`".into())
            },
        );

        self.oidc_checks(&app, &body).await;
        self.fhir_token_checks(&body, patient.as_deref()).await;
        self.introspection_checks(&body).await;
        self.refresh_checks(&app, &body).await;
        self.pkce_checks(&app).await;
        self.redirect_uri_checks(&app).await;
        self.aud_checks(&app).await;
        self.code_checks(&app, patient.as_deref()).await;
        self.post_check(&app).await;
        self.confidential_exchange_checks(&app).await;
        self.refresh_negative_checks(&app).await;
        self.scope_enforcement_checks(&app).await;
    }

    /// Scopes for the auxiliary grants: the launch scopes without identity (cheaper to issue).
    fn aux_scopes(&self) -> String {
        self.target
            .scopes
            .split_whitespace()
            .filter(|s| !matches!(*s, "openid" | "fhirUser" | "profile"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// S-8.1 and S-8.2 on a successful token response.
    fn token_body_checks(&mut self, body: &Map<String, Value>, _asked: &[String], what: &str) {
        let mut problems = Vec::new();
        if str_of(body, "access_token").is_none_or(str::is_empty) {
            problems.push("no `access_token`".to_owned());
        }
        match str_of(body, "token_type") {
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            Some(t) => problems.push(format!("`token_type` is {:?}", excerpt(t))),
            None => problems.push("no `token_type`".to_owned()),
        }
        if str_of(body, "scope").is_none() {
            problems.push("no `scope`".to_owned());
        }
        self.set(
            &S_8_1,
            if problems.is_empty() {
                Status::Pass
            } else {
                Status::Fail(format!("{what}: {}", problems.join(", ")))
            },
        );
        self.set(
            &S_8_2,
            match body.get("expires_in") {
                Some(v) => match v.as_u64() {
                    Some(n) if n <= 3600 => Status::Pass,
                    Some(n) => Status::Fail(format!("{what}: `expires_in` is {n} s, over an hour")),
                    None => Status::Fail(format!("{what}: `expires_in` is not a whole number")),
                },
                None => Status::Fail(format!("{what}: no `expires_in`")),
            },
        );
    }

    // ---- OpenID Connect (S-12) ----

    async fn oidc_checks(&mut self, app: &AppClient, body: &Map<String, Value>) {
        let oidc = [&S_12_1, &S_12_2, &S_12_3, &S_12_4];
        if !self.endpoints.has("sso-openid-connect") {
            for def in oidc {
                self.set(
                    def,
                    Status::NotApplicable("`sso-openid-connect` is not advertised".into()),
                );
            }
            return;
        }
        let smart_issuer = str_of(&self.endpoints.config, "issuer").map(str::to_owned);
        // OpenID Connect discovery is relative to the issuer of the id_token (which a vendor may
        // set apart from the SMART `issuer`); then the SMART `issuer`, then the FHIR base.
        let token_issuer = str_of(body, "id_token")
            .and_then(|t| smart_jose::decode_claims_unverified(t).ok())
            .and_then(|c| str_of(&c, "iss").map(str::to_owned));
        let mut candidates: Vec<String> = Vec::new();
        for c in [
            token_issuer.as_deref(),
            smart_issuer.as_deref(),
            Some(self.target.base()),
        ]
        .into_iter()
        .flatten()
        {
            let c = c.trim_end_matches('/').to_owned();
            if url::Url::parse(&c).is_ok() && !candidates.contains(&c) {
                candidates.push(c);
            }
        }
        let mut config = None;
        let mut seen = Vec::new();
        for c in &candidates {
            let url = format!("{c}/.well-known/openid-configuration");
            match self.wire.get(&url, &[("accept", "application/json")]).await {
                Ok(r) if r.status == 200 => match r.json_object() {
                    Some(m) => {
                        config = Some(m);
                        break;
                    }
                    None => seen.push(format!("{}: not a JSON object", excerpt(&url))),
                },
                Ok(r) => seen.push(format!("{}: {}", excerpt(&url), r.describe())),
                Err(e) => seen.push(e),
            }
        }
        let Some(config) = config else {
            self.set(&S_12_1, Status::Fail(seen.join("; ")));
            self.skip_all(&[&S_12_2, &S_12_3, &S_12_4], "no OpenID configuration");
            return;
        };
        let mut missing: Vec<&str> = [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ]
        .into_iter()
        .filter(|k| !config.contains_key(*k))
        .collect();
        let rs256 = config
            .get("id_token_signing_alg_values_supported")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "RS256"));
        if !rs256 {
            missing.push("RS256 in id_token_signing_alg_values_supported");
        }
        self.set(
            &S_12_1,
            if missing.is_empty() {
                Status::Pass
            } else {
                Status::Fail(format!("missing: {}", missing.join(", ")))
            },
        );
        let issuer = str_of(&config, "issuer")
            .map(str::to_owned)
            .or(smart_issuer)
            .unwrap_or_default();
        let jwks_url = str_of(&config, "jwks_uri")
            .or_else(|| str_of(&self.endpoints.config, "jwks_uri"))
            .map(str::to_owned);
        let Some(jwks_url) = jwks_url else {
            self.set(&S_12_2, Status::Fail("no `jwks_uri`".into()));
            self.skip_all(&[&S_12_3, &S_12_4], "no JWKS");
            return;
        };
        let jwks_reply = self
            .wire
            .get(&jwks_url, &[("accept", "application/json")])
            .await;
        let jwks_map = match &jwks_reply {
            Ok(r) if r.status == 200 => r.json_object(),
            _ => None,
        };
        let Some(jwks_map) = jwks_map else {
            let why = match jwks_reply {
                Ok(r) => r.describe(),
                Err(e) => e,
            };
            self.set(&S_12_2, Status::Fail(format!("the JWKS: {why}")));
            self.skip_all(&[&S_12_3, &S_12_4], "no JWKS");
            return;
        };
        let keys: Vec<&Map<String, Value>> = jwks_map
            .get("keys")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).take(256).collect())
            .unwrap_or_default();
        let rsa = keys
            .iter()
            .filter(|k| str_of(k, "kty") == Some("RSA"))
            .count();
        let private: Vec<&str> = PRIVATE_JWK_MEMBERS
            .iter()
            .copied()
            .filter(|m| keys.iter().any(|k| k.contains_key(*m)))
            .collect();
        self.set(
            &S_12_2,
            if rsa == 0 {
                Status::Fail("no RSA key in the JWKS".into())
            } else if !private.is_empty() {
                Status::Fail(format!(
                    "keys carry private members: {}",
                    private.join(", ")
                ))
            } else {
                Status::Pass
            },
        );
        let jwks: Option<smart_jose::Jwks> =
            serde_json::from_value(Value::Object(jwks_map.clone())).ok();

        let granted = scopes_of(body);
        let wants_identity =
            granted.iter().any(|s| s == "openid") && granted.iter().any(|s| s == "fhirUser");
        let Some(id_token) = str_of(body, "id_token") else {
            let status = if wants_identity {
                Status::Fail("`openid fhirUser` was granted without an `id_token`".into())
            } else {
                Status::Skipped("`openid fhirUser` was not granted; no id_token to check".into())
            };
            self.set(&S_12_3, status.clone());
            self.set(&S_12_4, status);
            return;
        };
        let header = smart_jose::decode_header_unverified(id_token).unwrap_or_default();
        let alg = str_of(&header, "alg").unwrap_or("").to_owned();
        let kid = str_of(&header, "kid").map(str::to_owned);
        let verified = if alg != "RS256" {
            Err(format!("header `alg` is {:?}, not RS256", excerpt(&alg)))
        } else if rsa > 1 && kid.is_none() {
            Err("no `kid` although the JWKS has several RSA keys".to_owned())
        } else if let Some(jwks) = &jwks {
            if let Some(k) = &kid
                && jwks.find(k).is_empty()
            {
                Err(format!("`kid` {:?} is not in the JWKS", excerpt(k)))
            } else {
                smart_jose::verify(
                    id_token,
                    jwks,
                    &smart_jose::Validation::id_token(
                        &issuer,
                        &app.client_id,
                        &[smart_jose::Algorithm::RS256],
                    ),
                )
                .map_err(|e| excerpt(&e.to_string()))
            }
        } else {
            Err("the JWKS does not parse as a key set".to_owned())
        };
        let claims = match verified {
            Ok(v) => {
                self.set(&S_12_3, Status::Pass);
                v.claims
            }
            Err(e) => {
                self.set(&S_12_3, Status::Fail(e));
                smart_jose::decode_claims_unverified(id_token).unwrap_or_default()
            }
        };
        let access = str_of(body, "access_token").unwrap_or("").to_owned();
        let status = match str_of(&claims, "fhirUser") {
            None if wants_identity => Status::Fail("no `fhirUser` claim".into()),
            None => Status::Skipped("`fhirUser` was not granted".into()),
            Some(user) => self.fhir_user_status(user, &access, &granted).await,
        };
        self.set(&S_12_4, status);
    }

    async fn fhir_user_status(&self, user: &str, access: &str, granted: &[String]) -> Status {
        let base = self.target.base();
        let relative = match user.strip_prefix(base) {
            Some(rest) => rest.trim_start_matches('/').to_owned(),
            None if !user.contains("://") => user.trim_start_matches('/').to_owned(),
            None => {
                return Status::Skipped(format!(
                    "`fhirUser` {:?} is on another server; the token is not sent there",
                    excerpt(user)
                ));
            }
        };
        let mut parts = relative.split('/');
        let (Some(kind), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
            return Status::Fail(format!(
                "`fhirUser` {:?} is not a resource reference",
                excerpt(user)
            ));
        };
        if !FHIR_USER_TYPES.contains(&kind) {
            return Status::Fail(format!("`fhirUser` names a {}", excerpt(kind)));
        }
        let readable = granted
            .iter()
            .any(|s| is_resource_scope(s) && (scope_type(s) == "*" || scope_type(s) == kind));
        if !readable {
            // Nothing granted lets the app read it; the type is all that can be checked.
            return Status::Pass;
        }
        match self.fhir_get(&format!("{kind}/{id}"), Some(access)).await {
            Ok(r) if r.status == 200 => Status::Pass,
            Ok(r) => Status::Fail(format!("reading `fhirUser` gave {}", r.describe())),
            Err(e) => Status::Fail(e),
        }
    }

    // ---- FHIR token handling (S-10.1 to S-10.3) ----

    async fn fhir_token_checks(&mut self, body: &Map<String, Value>, patient: Option<&str>) {
        let path = match patient {
            Some(p) => format!("Patient/{p}"),
            None => "Patient?_count=1".to_owned(),
        };
        let expect_401 = |r: Result<super::wire::Reply, String>| match r {
            Ok(r) if r.status == 401 => Status::Pass,
            Ok(r) => Status::Fail(format!("answered {}", r.describe())),
            Err(e) => Status::Fail(e),
        };
        let without = self.fhir_get(&path, None).await;
        self.set(&S_10_1, expect_401(without));
        let unknown = self.fhir_get(&path, Some(&random_string(32))).await;
        self.set(&S_10_2, expect_401(unknown));
        let lifetime = body.get("expires_in").and_then(Value::as_u64);
        match lifetime {
            Some(n) if n <= 10 => {
                tokio::time::sleep(std::time::Duration::from_secs(n + 2)).await;
                let access = str_of(body, "access_token").unwrap_or("");
                let expired = self.fhir_get(&path, Some(access)).await;
                self.set(&S_10_3, expect_401(expired));
            }
            Some(n) => self.set(
                &S_10_3,
                Status::Skipped(format!(
                    "access tokens live {n} s; the probe waits for expiry only up to 10 s"
                )),
            ),
            None => self.set(
                &S_10_3,
                Status::Skipped("the token response has no `expires_in` to wait for".into()),
            ),
        }
    }

    // ---- Introspection (S-15) ----

    async fn introspection_checks(&mut self, body: &Map<String, Value>) {
        let Some(url) = self.endpoints.introspect.clone() else {
            for def in [&S_15_1, &S_15_2] {
                self.set(
                    def,
                    Status::NotApplicable("no `introspection_endpoint` is advertised".into()),
                );
            }
            return;
        };
        let access = str_of(body, "access_token").unwrap_or("").to_owned();
        let headers = vec![("authorization".to_owned(), format!("Bearer {access}"))];
        let active = self
            .wire
            .post_form(&url, &[("token".into(), access.clone())], &headers)
            .await;
        self.set(
            &S_15_1,
            match active {
                Ok(r) => match r.json_object().filter(|_| r.status == 200) {
                    Some(m) if m.get("active") == Some(&Value::Bool(true)) => {
                        let missing: Vec<&str> = ["scope", "client_id", "exp"]
                            .into_iter()
                            .filter(|k| !m.contains_key(*k))
                            .collect();
                        if missing.is_empty() {
                            Status::Pass
                        } else {
                            Status::Fail(format!("missing: {}", missing.join(", ")))
                        }
                    }
                    Some(_) => Status::Fail("a live token was reported inactive".into()),
                    None => Status::Fail(r.describe()),
                },
                Err(e) => Status::Fail(e),
            },
        );
        let inactive = self
            .wire
            .post_form(&url, &[("token".into(), random_string(32))], &headers)
            .await;
        self.set(
            &S_15_2,
            match inactive {
                Ok(r) => match r.json_object().filter(|_| r.status == 200) {
                    Some(m) if m.get("active") == Some(&Value::Bool(false)) => Status::Pass,
                    Some(_) => Status::Fail("an unknown token was not `active: false`".into()),
                    None => Status::Fail(r.describe()),
                },
                Err(e) => Status::Fail(e),
            },
        );
    }

    // ---- Refresh (S-11) ----

    async fn refresh(
        &mut self,
        app: Option<&AppClient>,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<super::wire::Reply, String> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.token_request(app, &form).await
    }

    /// S-11.1 and S-11.5 on the main grant.
    async fn refresh_checks(&mut self, app: &AppClient, body: &Map<String, Value>) {
        let Some(old) = str_of(body, "refresh_token").map(str::to_owned) else {
            self.skip_all(
                &[&S_11_1, &S_11_5],
                "the launch was granted no refresh token",
            );
            return;
        };
        let original = scopes_of(body);
        let reply = match self.refresh(Some(app), &old, None).await {
            Ok(r) => r,
            Err(e) => {
                self.set(&S_11_1, Status::Fail(e));
                self.skip_all(&[&S_11_5], "the refresh failed");
                return;
            }
        };
        let Some(new) = reply.json_object().filter(|_| reply.ok()) else {
            self.set(&S_11_1, Status::Fail(reply.describe()));
            self.skip_all(&[&S_11_5], "the refresh failed");
            return;
        };
        let mut problems = Vec::new();
        for key in ["access_token", "token_type", "scope"] {
            if str_of(&new, key).is_none() {
                problems.push(format!("no `{key}`"));
            }
        }
        if new.get("expires_in").and_then(Value::as_u64).is_none() {
            problems.push("no numeric `expires_in`".into());
        }
        if let Err(e) = within(&scopes_of(&new), &original) {
            problems.push(format!("scope grew: {e}"));
        }
        self.set(
            &S_11_1,
            if problems.is_empty() {
                Status::Pass
            } else {
                Status::Fail(problems.join(", "))
            },
        );
        match str_of(&new, "refresh_token") {
            Some(rotated) if rotated != old => {
                let reuse = self.refresh(Some(app), &old, None).await;
                self.set(
                    &S_11_5,
                    match refused(&reuse) {
                        Ok(true) => Status::Pass,
                        Ok(false) => Status::Fail("the rotated-out token still works".into()),
                        Err(e) => Status::Fail(e),
                    },
                );
            }
            _ => self.set(
                &S_11_5,
                Status::NotApplicable("refresh tokens are not rotated".into()),
            ),
        }
    }

    /// A fresh grant with a refresh token, or why there is none.
    async fn refreshable_grant(&mut self, app: &AppClient) -> Result<Map<String, Value>, String> {
        let scope = self.aux_scopes();
        let body = self.launch(app, &scope).await?;
        if str_of(&body, "refresh_token").is_none() {
            return Err("the launch was granted no refresh token".into());
        }
        Ok(body)
    }

    /// S-11.2, S-11.3, S-11.4 and S-11.6, each on its own grant.
    async fn refresh_negative_checks(&mut self, app: &AppClient) {
        // S-11.2: narrower.
        match self.refreshable_grant(app).await {
            Err(e) => self.skip_all(&[&S_11_2], &e),
            Ok(body) => {
                let granted = scopes_of(&body);
                let resource: Vec<&String> =
                    granted.iter().filter(|s| is_resource_scope(s)).collect();
                if resource.len() < 2 {
                    self.set(
                        &S_11_2,
                        Status::Skipped("fewer than two resource scopes were granted".into()),
                    );
                } else {
                    let dropped = resource[resource.len() - 1].clone();
                    let narrow: Vec<String> =
                        granted.iter().filter(|s| **s != dropped).cloned().collect();
                    let token = str_of(&body, "refresh_token").unwrap_or("").to_owned();
                    let reply = self
                        .refresh(Some(app), &token, Some(&narrow.join(" ")))
                        .await;
                    self.set(
                        &S_11_2,
                        match reply {
                            Ok(r) => match r.json_object().filter(|_| r.ok()) {
                                Some(m) => match within(&scopes_of(&m), &narrow) {
                                    Ok(()) => Status::Pass,
                                    Err(e) => Status::Fail(format!(
                                        "asked without `{}`: {e}",
                                        excerpt(&dropped)
                                    )),
                                },
                                None => Status::Fail(r.describe()),
                            },
                            Err(e) => Status::Fail(e),
                        },
                    );
                }
            }
        }
        // S-11.3: broader.
        match self.refreshable_grant(app).await {
            Err(e) => self.skip_all(&[&S_11_3], &e),
            Ok(body) => {
                let granted = scopes_of(&body);
                let extra = [
                    "user/Observation.cruds",
                    "patient/Observation.cruds",
                    "system/Patient.cruds",
                ]
                .into_iter()
                .find(|s| !granted.iter().any(|g| g == s))
                .unwrap_or("system/Patient.cruds");
                let broad = format!("{} {extra}", granted.join(" "));
                let token = str_of(&body, "refresh_token").unwrap_or("").to_owned();
                let reply = self.refresh(Some(app), &token, Some(&broad)).await;
                self.set(
                    &S_11_3,
                    match reply {
                        Ok(r) if !r.ok() => Status::Pass,
                        Ok(r) => {
                            let got = r.json_object().map(|m| scopes_of(&m)).unwrap_or_default();
                            if got.iter().any(|s| s == extra) {
                                Status::Fail(format!("`{extra}` was granted on refresh"))
                            } else {
                                Status::Pass
                            }
                        }
                        Err(e) => Status::Fail(e),
                    },
                );
            }
        }
        // S-11.4: unauthenticated refresh of a confidential client.
        if !app.is_confidential() {
            self.set(
                &S_11_4,
                Status::NotApplicable("the probe's app is a public client".into()),
            );
        } else {
            match self.refreshable_grant(app).await {
                Err(e) => self.skip_all(&[&S_11_4], &e),
                Ok(body) => {
                    let token = str_of(&body, "refresh_token").unwrap_or("").to_owned();
                    let bare = AppClient::public(app.client_id.clone(), app.redirect_uri.clone());
                    let reply = self.refresh(Some(&bare), &token, None).await;
                    self.set(
                        &S_11_4,
                        match refused(&reply) {
                            Ok(true) => Status::Pass,
                            Ok(false) => Status::Fail(
                                "refreshed with only the refresh token and client_id".into(),
                            ),
                            Err(e) => Status::Fail(e),
                        },
                    );
                }
            }
        }
        // S-11.6: another client presents the refresh token.
        let Some(other) = self.target.other_app.clone() else {
            self.skip_all(&[&S_11_6], "no second registered app was given");
            return;
        };
        match self.refreshable_grant(app).await {
            Err(e) => self.skip_all(&[&S_11_6], &e),
            Ok(body) => {
                let token = str_of(&body, "refresh_token").unwrap_or("").to_owned();
                let reply = self.refresh(Some(&other), &token, None).await;
                self.set(
                    &S_11_6,
                    match refused(&reply) {
                        Ok(true) => Status::Pass,
                        Ok(false) => Status::Fail(format!(
                            "`{}` refreshed `{}`'s grant",
                            excerpt(&other.client_id),
                            excerpt(&app.client_id)
                        )),
                        Err(e) => Status::Fail(e),
                    },
                );
            }
        }
    }

    // ---- PKCE (S-4.2 to S-4.4) ----

    async fn pkce_checks(&mut self, app: &AppClient) {
        let scope = self.aux_scopes();
        let mut accepted = Vec::new();
        let mut error = None;
        for method in [Some("plain"), None] {
            let pkce = Pkce::new();
            let mut request = self.auth_request(app, &scope, &pkce);
            request.set("code_challenge", Some(&pkce.verifier));
            request.set("code_challenge_method", method);
            match self.authorize(&request, false).await {
                Ok(o) if o.code().is_some() => accepted.push(match method {
                    Some(m) => format!("code_challenge_method={m}"),
                    None => "no code_challenge_method".to_owned(),
                }),
                Ok(_) => {}
                Err(e) => error = Some(e),
            }
        }
        self.set(
            &S_4_2,
            match (accepted.is_empty(), error) {
                (false, _) => Status::Fail(format!(
                    "a code was issued for {}",
                    accepted.join(" and for ")
                )),
                (true, Some(e)) => Status::Fail(e),
                (true, None) => Status::Pass,
            },
        );
        for (def, verifier) in [(&S_4_3, None), (&S_4_4, Some(Pkce::new().verifier))] {
            let pkce = Pkce::new();
            let status = match self.code(app, &scope, &pkce).await {
                Err(e) => Status::Skipped(format!("no code: {e}")),
                Ok(code) => match refused(&self.exchange(app, &code, verifier.as_deref()).await) {
                    Ok(true) => Status::Pass,
                    Ok(false) => Status::Fail("a token was issued".into()),
                    Err(e) => Status::Fail(e),
                },
            };
            self.set(def, status);
        }
    }

    // ---- redirect_uri (S-6.2) and aud (S-6.3) ----

    async fn redirect_uri_checks(&mut self, app: &AppClient) {
        let scope = self.aux_scopes();
        let registered = app.redirect_uri.clone();
        let added_query = if registered.contains('?') {
            format!("{registered}&probe=1")
        } else {
            format!("{registered}?probe=1")
        };
        let longer = match registered.split_once('?') {
            Some((path, query)) => format!("{path}probe?{query}"),
            None => format!("{registered}probe"),
        };
        let variants = [
            ("a foreign URI", "https://probe.invalid/callback".to_owned()),
            ("a longer path", longer),
            ("an added query", added_query),
        ];
        let mut redirected = Vec::new();
        let mut errors = Vec::new();
        for (what, uri) in variants {
            let pkce = Pkce::new();
            let mut request = self.auth_request(app, &scope, &pkce);
            request.set("redirect_uri", Some(&uri));
            match self.authorize(&request, false).await {
                Ok(o @ super::Authorization::Redirected { .. })
                    if o.param("probe") == Some("1") =>
                {
                    // The registered path, but with the unregistered URI's query.
                    redirected.push(what);
                }
                Ok(super::Authorization::Redirected { to, .. }) if to != registered => {
                    redirected.push(what);
                }
                Ok(super::Authorization::Redirected { .. }) => {
                    // Redirected to the registered URI instead: not to the unregistered one.
                }
                Ok(super::Authorization::Refused { .. }) => {}
                Err(e) => errors.push(e),
            }
        }
        self.set(
            &S_6_2,
            if !redirected.is_empty() {
                Status::Fail(format!("redirected to {}", redirected.join(", ")))
            } else if let Some(e) = errors.pop() {
                Status::Fail(e)
            } else {
                Status::Pass
            },
        );
    }

    async fn aud_checks(&mut self, app: &AppClient) {
        let scope = self.aux_scopes();
        let base = self.target.base().to_owned();
        let other_host = match url::Url::parse(&base) {
            Ok(mut u) => {
                let _ = u.set_host(Some("probe.invalid"));
                u.as_str().trim_end_matches('/').to_owned()
            }
            Err(_) => "https://probe.invalid/fhir".to_owned(),
        };
        let variants = [
            ("another host", other_host),
            ("a longer path", format!("{base}probe")),
            ("a trailing slash", format!("{base}/")),
        ];
        let mut accepted = Vec::new();
        let mut errors = Vec::new();
        for (what, aud) in variants {
            let pkce = Pkce::new();
            let mut request = self.auth_request(app, &scope, &pkce);
            request.set("aud", Some(&aud));
            match self.authorize(&request, false).await {
                Ok(o) if o.code().is_some() => accepted.push(what),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        self.set(
            &S_6_3,
            if !accepted.is_empty() {
                Status::Fail(format!(
                    "a code was issued for an aud with {}",
                    accepted.join(" and with ")
                ))
            } else if let Some(e) = errors.pop() {
                Status::Fail(e)
            } else {
                Status::Pass
            },
        );
    }

    // ---- Codes (S-6.4 to S-6.7) ----

    async fn code_checks(&mut self, app: &AppClient, patient: Option<&str>) {
        let scope = self.aux_scopes();
        // S-6.4 and S-6.5: replay.
        let pkce = Pkce::new();
        match self.code(app, &scope, &pkce).await {
            Err(e) => self.skip_all(&[&S_6_4, &S_6_5], &format!("no code: {e}")),
            Ok(code) => {
                let first = self.exchange(app, &code, Some(&pkce.verifier)).await;
                let first = match first {
                    Ok(r) if r.ok() => r.json_object().unwrap_or_default(),
                    Ok(r) => {
                        let why = format!("the first redemption failed: {}", r.describe());
                        self.skip_all(&[&S_6_4, &S_6_5], &why);
                        Map::new()
                    }
                    Err(e) => {
                        self.skip_all(&[&S_6_4, &S_6_5], &e);
                        Map::new()
                    }
                };
                if let Some(token) = str_of(&first, "access_token").map(str::to_owned) {
                    let second = self.exchange(app, &code, Some(&pkce.verifier)).await;
                    match refused(&second) {
                        Ok(true) => {
                            self.set(&S_6_4, Status::Pass);
                            let path = match patient {
                                Some(p) => format!("Patient/{p}"),
                                None => "Patient?_count=1".to_owned(),
                            };
                            let status = match self.fhir_get(&path, Some(&token)).await {
                                Ok(r) if r.status == 401 || r.status == 403 => Status::Pass,
                                Ok(r) => Status::Fail(format!(
                                    "the first redemption's access token still reads ({})",
                                    r.describe()
                                )),
                                Err(e) => Status::Fail(e),
                            };
                            self.set(&S_6_5, status);
                        }
                        Ok(false) => {
                            self.set(
                                &S_6_4,
                                Status::Fail("the code was redeemed a second time".into()),
                            );
                            self.set(
                                &S_6_5,
                                Status::Skipped("the replay was accepted (see S-6.4)".into()),
                            );
                        }
                        Err(e) => self.set(&S_6_4, Status::Fail(e)),
                    }
                }
            }
        }
        // S-6.6: another client redeems the code.
        match self.target.other_app.clone() {
            None => self.skip_all(&[&S_6_6], "no second registered app was given"),
            Some(other) => {
                let pkce = Pkce::new();
                let status = match self.code(app, &scope, &pkce).await {
                    Err(e) => Status::Skipped(format!("no code: {e}")),
                    Ok(code) => {
                        let form = [
                            ("grant_type", "authorization_code"),
                            ("code", code.as_str()),
                            ("redirect_uri", app.redirect_uri.as_str()),
                            ("code_verifier", pkce.verifier.as_str()),
                        ];
                        match refused(&self.token_request(Some(&other), &form).await) {
                            Ok(true) => Status::Pass,
                            Ok(false) => Status::Fail(format!(
                                "`{}` redeemed a code issued to `{}`",
                                excerpt(&other.client_id),
                                excerpt(&app.client_id)
                            )),
                            Err(e) => Status::Fail(e),
                        }
                    }
                };
                self.set(&S_6_6, status);
            }
        }
        // S-6.7: a different redirect_uri at the exchange.
        let pkce = Pkce::new();
        let status = match self.code(app, &scope, &pkce).await {
            Err(e) => Status::Skipped(format!("no code: {e}")),
            Ok(code) => {
                let other_uri = format!("{}probe", app.redirect_uri);
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", other_uri.as_str()),
                    ("code_verifier", pkce.verifier.as_str()),
                ];
                match refused(&self.token_request(Some(app), &form).await) {
                    Ok(true) => Status::Pass,
                    Ok(false) => Status::Fail("a token was issued".into()),
                    Err(e) => Status::Fail(e),
                }
            }
        };
        self.set(&S_6_7, status);
    }

    /// S-6.8: authorization by POST.
    async fn post_check(&mut self, app: &AppClient) {
        if !self.endpoints.has("authorize-post") {
            self.set(
                &S_6_8,
                Status::NotApplicable("`authorize-post` is not advertised".into()),
            );
            return;
        }
        let scope = self.aux_scopes();
        let pkce = Pkce::new();
        let request = self.auth_request(app, &scope, &pkce);
        let status = match self.authorize(&request, true).await {
            Ok(o) if o.code().is_some() => Status::Pass,
            Ok(o) => Status::Fail(format!("a POSTed standalone request: {}", o.describe())),
            Err(e) => Status::Fail(e),
        };
        self.set(&S_6_8, status);
    }

    /// S-8.5: the code exchange of a confidential client without or with wrong credentials.
    async fn confidential_exchange_checks(&mut self, app: &AppClient) {
        let wrong = match &app.credential {
            super::Credential::None => {
                self.set(
                    &S_8_5,
                    Status::NotApplicable("the probe's app is a public client".into()),
                );
                return;
            }
            super::Credential::Secret(s) => super::Credential::Secret(format!("{s}-wrong")),
            super::Credential::Key(k) => match smart_jose::PrivateKey::generate(k.algorithm()) {
                Ok(other) => super::Credential::Key(other),
                Err(e) => {
                    self.set(&S_8_5, Status::Skipped(format!("cannot make a key: {e}")));
                    return;
                }
            },
        };
        let scope = self.aux_scopes();
        let cases = [
            (
                "no credentials",
                AppClient::public(app.client_id.clone(), app.redirect_uri.clone()),
            ),
            (
                "wrong credentials",
                AppClient::confidential(app.client_id.clone(), app.redirect_uri.clone(), wrong),
            ),
        ];
        let mut issued = Vec::new();
        for (what, as_client) in cases {
            let pkce = Pkce::new();
            match self.code(app, &scope, &pkce).await {
                Err(e) => {
                    self.set(&S_8_5, Status::Skipped(format!("no code: {e}")));
                    return;
                }
                Ok(code) => {
                    match refused(&self.exchange(&as_client, &code, Some(&pkce.verifier)).await) {
                        Ok(true) => {}
                        Ok(false) => issued.push(what),
                        Err(e) => {
                            self.set(&S_8_5, Status::Fail(e));
                            return;
                        }
                    }
                }
            }
        }
        self.set(
            &S_8_5,
            if issued.is_empty() {
                Status::Pass
            } else {
                Status::Fail(format!(
                    "a token was issued with {}",
                    issued.join(" and with ")
                ))
            },
        );
    }

    // ---- Scope enforcement (S-10.4, S-10.5) ----

    async fn scope_enforcement_checks(&mut self, app: &AppClient) {
        let resource: Vec<String> = self
            .target
            .scopes
            .split_whitespace()
            .filter(|s| is_resource_scope(s))
            .map(str::to_owned)
            .collect();
        let types: Vec<&str> = resource.iter().map(|s| scope_type(s)).collect();
        let Some(outside) = types.iter().skip(1).find(|t| **t != types[0] && **t != "*") else {
            self.skip_all(
                &[&S_10_4, &S_10_5],
                "the launch scopes need two resource types (e.g. Patient and Observation)",
            );
            return;
        };
        let outside = (*outside).to_owned();
        let inside = types[0].to_owned();
        let mut narrow: Vec<&str> = self
            .target
            .scopes
            .split_whitespace()
            .filter(|s| s.starts_with("launch"))
            .collect();
        narrow.push(&resource[0]);
        let narrow = narrow.join(" ");
        let body = match self.launch(app, &narrow).await {
            Ok(b) => b,
            Err(e) => {
                self.skip_all(&[&S_10_4, &S_10_5], &format!("no narrow grant: {e}"));
                return;
            }
        };
        let access = str_of(&body, "access_token").unwrap_or("").to_owned();
        let Some(patient) = str_of(&body, "patient").map(str::to_owned) else {
            self.skip_all(
                &[&S_10_4, &S_10_5],
                "the narrow grant has no patient in context to read",
            );
            return;
        };
        let in_scope = if inside == "Patient" {
            format!("Patient/{patient}")
        } else {
            format!("{inside}?patient={patient}")
        };
        match self.fhir_get(&in_scope, Some(&access)).await {
            Ok(r) if r.status == 200 => {}
            Ok(r) => {
                let why = format!(
                    "an in-scope read ({}) was refused too: {}",
                    excerpt(&in_scope),
                    r.describe()
                );
                self.skip_all(&[&S_10_4, &S_10_5], &why);
                return;
            }
            Err(e) => {
                self.skip_all(&[&S_10_4, &S_10_5], &e);
                return;
            }
        }
        let granted = scopes_of(&body);
        let broader: Vec<&String> = granted
            .iter()
            .filter(|s| {
                is_resource_scope(s) && matches!(scope_type(s), t if t == outside || t == "*")
            })
            .collect();
        let out_path = format!("{outside}?patient={patient}");
        if let Some(extra) = broader.first() {
            let why = format!(
                "asked for `{}` only, the server granted `{}` too; nothing is outside the grant to try",
                excerpt(&resource[0]),
                excerpt(extra)
            );
            self.set(&S_10_4, Status::Skipped(why));
        } else {
            self.set(
                &S_10_4,
                match self.fhir_get(&out_path, Some(&access)).await {
                    Ok(r) if r.status == 401 || r.status == 403 => Status::Pass,
                    Ok(r) => Status::Fail(format!(
                        "reading {} with only `{}` gave {}",
                        excerpt(&out_path),
                        excerpt(&resource[0]),
                        r.describe()
                    )),
                    Err(e) => Status::Fail(e),
                },
            );
        }
        let writable: Vec<&String> = granted
            .iter()
            .filter(|s| {
                is_resource_scope(s)
                    && matches!(scope_type(s), t if t == inside || t == "*")
                    && grants_create(s)
            })
            .collect();
        if let Some(w) = writable.first() {
            let why = format!("the server granted `{}`, which allows a create", excerpt(w));
            self.set(&S_10_5, Status::Skipped(why));
            return;
        }
        let url = format!("{}/{inside}", self.target.base());
        let resource_body = if inside == "Patient" {
            serde_json::json!({"resourceType": "Patient", "name": [{"family": "SmartProbe"}]})
        } else {
            serde_json::json!({"resourceType": inside, "subject": {"reference": format!("Patient/{patient}")}})
        };
        let headers = vec![("authorization".to_owned(), format!("Bearer {access}"))];
        let write = self
            .wire
            .post(
                &url,
                "application/fhir+json",
                resource_body.to_string().into_bytes(),
                &headers,
            )
            .await;
        self.set(
            &S_10_5,
            match write {
                Ok(r) if (400..500).contains(&r.status) => Status::Pass,
                Ok(r) => Status::Fail(format!(
                    "a create of {} with only `{}` gave {}",
                    excerpt(&inside),
                    excerpt(&resource[0]),
                    r.describe()
                )),
                Err(e) => Status::Fail(e),
            },
        );
    }
}

/// Whether a resource scope allows a create: v2 `c` in the permissions, v1 `write` or `*`.
fn grants_create(scope: &str) -> bool {
    let perms = scope
        .split_once('.')
        .map_or("", |(_, p)| p.split('?').next().unwrap_or(""));
    perms == "write"
        || perms == "*"
        || (perms.chars().all(|c| "cruds".contains(c)) && perms.contains('c'))
}

/// The scopes of a request string.
fn scopes_of_request(scope: &str) -> Vec<String> {
    scope.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_types_and_kinds() {
        assert_eq!(scope_type("patient/Observation.rs"), "Observation");
        assert_eq!(scope_type("user/*.cruds"), "*");
        assert_eq!(
            scope_type("patient/Observation.rs?category=x"),
            "Observation"
        );
        assert!(is_resource_scope("system/Patient.rs"));
        assert!(!is_resource_scope("launch/patient"));
        assert!(grants_create("patient/Patient.cruds"));
        assert!(grants_create("user/Observation.write"));
        assert!(grants_create("user/*.*"));
        assert!(!grants_create("patient/Patient.rs"));
        assert!(!grants_create("patient/Patient.read"));
    }

    #[test]
    fn a_tricky_state_needs_encoding() {
        let s = tricky_state();
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        assert_ne!(s, encoded);
    }
}
