//! HTTP-level tests of the sandbox: every request goes over real TCP with
//! reqwest, redirects are never followed, so each test sees exactly what an
//! app would see.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod common;

mod asymmetric;
mod authorize;
mod backend;
mod client_id_header;
mod client_identification;
mod defects;
mod discovery;
mod fhir;
mod fhir_access;
mod fhir_faults;
mod fhir_rest;
mod fhir_scopes;
mod fhir_search;
mod hostile;
mod introspect;
mod issuer_parameter;
mod launch;
mod lifecycle;
mod limits;
mod oidc;
mod profiles;
mod search_codes;
mod token;
