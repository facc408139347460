//! Routing and CORS.
//!
//! CORS follows SMART S-5: discovery documents and the JWKS are readable from
//! any origin; the token and introspection endpoints and the FHIR API only
//! from origins of registered redirect or launch URIs, so a browser app under test behaves here as it
//! would at a real EHR that registered it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::state::Shared;
use crate::{authorize, discovery, fhir, introspect, launch, oidc, token};

/// Builds the sandbox router. Every path comes from the profile (the
/// `generic` ones are `/fhir`, `/auth/authorize`, `/auth/token`,
/// `/auth/introspect` and `/auth/jwks`).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let urls = &shared.urls;
    let fhir = &urls.fhir_path;
    let mut router = Router::new()
        .route("/", get(discovery::index))
        .route(
            &urls.smart_configuration_path(),
            get(discovery::smart_configuration),
        )
        .route(&urls.metadata_path(), get(discovery::metadata));
    for path in &urls.openid_configuration_paths {
        router = router.route(path, get(oidc::openid_configuration));
    }
    let fhir_well_known = format!("{fhir}/.well-known/openid-configuration");
    if !urls.openid_configuration_paths.contains(&fhir_well_known) {
        // Not served at the FHIR base (Cerner): a plain 404, not a FHIR 401.
        router = router.route(&fhir_well_known, get(not_found));
    }
    router
        .route(fhir, any(fhir::entry))
        .route(&format!("{fhir}/"), any(fhir::entry))
        .route(&format!("{fhir}/{{*rest}}"), any(fhir::entry))
        .route(
            &urls.authorize_path,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(&urls.token_path, post(token::token))
        .route(&urls.introspection_path, post(introspect::introspect))
        .route(&urls.jwks_path, get(oidc::jwks))
        .route("/sandbox/launch", post(launch::launch_json))
        .route("/sandbox/ehr-launch", get(launch::launch_redirect))
        .route("/smart-style.json", get(discovery::smart_style))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), cors))
        // Clients send `Accept-Encoding: gzip`; search pages are large.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(shared)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 Not Found\n",
    )
        .into_response()
}

/// Unrouted paths: 404, or the profile's `unknown_tenant_body` (403, plain
/// text) under another tenant's FHIR base.
async fn fallback(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    match (
        &shared.profile.unknown_tenant_body,
        shared.profile.other_tenant(uri.path()),
    ) {
        (Some(body), Some(tenant)) => {
            tracing::debug!(tenant, "request for an unknown tenant");
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                body.clone(),
            )
                .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

impl Shared {
    fn is_public_document(&self, path: &str) -> bool {
        let urls = &self.urls;
        path == urls.smart_configuration_path()
            || urls.openid_configuration_paths.iter().any(|p| p == path)
            || path == urls.metadata_path()
            || path == urls.jwks_path
            || path == "/smart-style.json"
    }

    fn is_protected_api(&self, path: &str) -> bool {
        let urls = &self.urls;
        path == urls.token_path
            || path == urls.introspection_path
            || path == urls.fhir_path
            || path
                .strip_prefix(urls.fhir_path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

async fn cors(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if shared.is_public_document(&path) {
        if preflight {
            return preflight_response(HeaderValue::from_static("*"));
        }
        return next.run(request).await;
    }
    let allowed = origin
        .filter(|o| shared.is_protected_api(&path) && shared.is_registered_origin(o))
        .and_then(|o| HeaderValue::from_str(&o).ok());
    let Some(allowed) = allowed else {
        return next.run(request).await;
    };
    if preflight {
        return preflight_response(allowed);
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Location, ETag, Last-Modified, Retry-After"),
    );
    response
}

fn preflight_response(origin: HeaderValue) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Authorization, Content-Type, Accept, If-Match, If-None-Exist, Prefer",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}
