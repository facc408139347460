//! Backend-services checks (S-13, S-14): a valid `client_credentials` request, then one wrong
//! thing at a time in the client assertion (type, signature, `aud`, expiry, replayed `jti`) and
//! in the grant type.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::BackendClient;
use super::checks::*;
use super::runner::{Runner, now};
use super::wire::{Reply, str_of};
use crate::model::{CheckDef, Status};

/// RFC 7523's client assertion type.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const ALL_BACKEND: &[&CheckDef] = &[
    &S_13_1, &S_13_2, &S_13_3, &S_13_4, &S_13_5, &S_13_6, &S_14_1, &S_14_2, &S_14_3, &S_14_4,
];

/// A copy of a compact JWS whose signature has one bit flipped.
fn corrupt_signature(jws: &str) -> String {
    let Some((signed, signature)) = jws.rsplit_once('.') else {
        return format!("{jws}x");
    };
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    let middle = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(middle) {
        *b ^= 0x01;
    } else {
        bytes.push(0);
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

impl Runner<'_> {
    fn assertion(
        &self,
        backend: &BackendClient,
        audience: &str,
        issued_at: u64,
    ) -> Result<String, String> {
        smart_jose::client_assertion(
            &backend.key,
            &smart_jose::ClientAssertion::new(&backend.client_id, audience),
            issued_at,
        )
        .map_err(|e| format!("cannot sign a client assertion: {e}"))
    }

    async fn backend_request(
        &mut self,
        backend: &BackendClient,
        grant_type: &str,
        assertion_type: &str,
        assertion: &str,
    ) -> Result<Reply, String> {
        let pairs = vec![
            ("grant_type".to_owned(), grant_type.to_owned()),
            ("scope".to_owned(), backend.scopes.clone()),
            (
                "client_assertion_type".to_owned(),
                assertion_type.to_owned(),
            ),
            ("client_assertion".to_owned(), assertion.to_owned()),
        ];
        self.post_token(pairs, Vec::new()).await
    }

    pub(crate) async fn backend_checks(&mut self) {
        let Some(backend) = self.target.backend.clone() else {
            self.skip_all(ALL_BACKEND, "no backend client was given");
            return;
        };
        let token_url = match self.token_url() {
            Ok(u) => u.to_owned(),
            Err(e) => {
                self.skip_all(ALL_BACKEND, &e);
                return;
            }
        };
        let valid = match self.assertion(&backend, &token_url, now()) {
            Ok(a) => a,
            Err(e) => {
                self.skip_all(ALL_BACKEND, &e);
                return;
            }
        };
        let reply = self
            .backend_request(&backend, "client_credentials", JWT_BEARER, &valid)
            .await;
        let body = match &reply {
            Ok(r) if r.ok() => r.json_object(),
            _ => None,
        };
        let Some(body) = body else {
            let why = match reply {
                Ok(r) => r.describe(),
                Err(e) => e,
            };
            self.set(&S_14_1, Status::Fail(why.clone()));
            self.skip_all(
                ALL_BACKEND,
                &format!("a valid backend request failed: {why}"),
            );
            return;
        };
        let missing: Vec<&str> = ["access_token", "token_type", "scope"]
            .into_iter()
            .filter(|k| str_of(&body, k).is_none())
            .chain(
                body.get("expires_in")
                    .and_then(Value::as_u64)
                    .is_none()
                    .then_some("expires_in"),
            )
            .collect();
        self.set(
            &S_14_1,
            if missing.is_empty() {
                Status::Pass
            } else {
                Status::Fail(format!("missing: {}", missing.join(", ")))
            },
        );
        self.set(
            &S_14_3,
            match body.get("expires_in").and_then(Value::as_u64) {
                Some(n) if n <= 300 => Status::Pass,
                Some(n) => Status::Fail(format!("`expires_in` is {n} s")),
                None => Status::Skipped("no numeric `expires_in`".into()),
            },
        );
        self.set(
            &S_14_4,
            if body.contains_key("refresh_token") {
                Status::Fail("a `refresh_token` was issued".into())
            } else {
                Status::Pass
            },
        );

        // Each refused assertion's error code, for S-13.6.
        let mut codes: Vec<(&'static str, String)> = Vec::new();
        let replay = self
            .backend_request(&backend, "client_credentials", JWT_BEARER, &valid)
            .await;
        self.refusal(&S_13_5, replay, "the replayed assertion", &mut codes);

        let cases: [(
            &'static CheckDef,
            &'static str,
            Result<String, String>,
            &str,
        ); 4] = [
            (
                &S_13_1,
                "an assertion with a SAML assertion type",
                self.assertion(&backend, &token_url, now()),
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            (
                &S_13_2,
                "an assertion with a bad signature",
                self.assertion(&backend, &token_url, now())
                    .map(|a| corrupt_signature(&a)),
                JWT_BEARER,
            ),
            (
                &S_13_3,
                "an assertion for another audience",
                self.assertion(&backend, "https://probe.invalid/token", now()),
                JWT_BEARER,
            ),
            (
                &S_13_4,
                "an expired assertion",
                self.assertion(&backend, &token_url, now().saturating_sub(3600)),
                JWT_BEARER,
            ),
        ];
        for (def, what, assertion, kind) in cases {
            match assertion {
                Err(e) => self.set(def, Status::Skipped(e)),
                Ok(a) => {
                    let reply = self
                        .backend_request(&backend, "client_credentials", kind, &a)
                        .await;
                    self.refusal(def, reply, what, &mut codes);
                }
            }
        }
        codes.retain(|(id, _)| *id != S_13_1.id);
        let wrong: Vec<String> = codes
            .iter()
            .filter(|(_, code)| code != "invalid_client")
            .map(|(id, code)| format!("{id}: {code}"))
            .collect();
        self.set(
            &S_13_6,
            if codes.is_empty() {
                Status::Skipped("no assertion was refused".into())
            } else if wrong.is_empty() {
                Status::Pass
            } else {
                Status::Fail(format!("other errors: {}", wrong.join(", ")))
            },
        );

        let fresh = self.assertion(&backend, &token_url, now());
        let status = match fresh {
            Err(e) => Status::Skipped(e),
            Ok(a) => match self
                .backend_request(&backend, "password", JWT_BEARER, &a)
                .await
            {
                Ok(r) if r.status == 400 => Status::Pass,
                Ok(r) => Status::Fail(format!("`grant_type=password` gave {}", r.describe())),
                Err(e) => Status::Fail(e),
            },
        };
        self.set(&S_14_2, status);
    }

    /// Records whether a negative request was refused; collects its error code.
    fn refusal(
        &mut self,
        def: &'static CheckDef,
        reply: Result<Reply, String>,
        what: &str,
        codes: &mut Vec<(&'static str, String)>,
    ) {
        let status = match reply {
            Ok(r) if !r.ok() => {
                codes.push((def.id, r.oauth_error().unwrap_or_else(|| r.describe())));
                Status::Pass
            }
            Ok(_) => Status::Fail(format!("{what} got a token")),
            Err(e) => Status::Fail(e),
        };
        self.set(def, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupted_signature_differs_and_keeps_its_shape() {
        let jws = "aGVhZA.Y2xhaW1z.c2lnbmF0dXJl";
        let bad = corrupt_signature(jws);
        assert_ne!(bad, jws);
        assert!(bad.starts_with("aGVhZA.Y2xhaW1z."));
        assert_eq!(bad.split('.').count(), 3);
        assert_eq!(corrupt_signature("nodots"), "nodotsx");
    }
}
