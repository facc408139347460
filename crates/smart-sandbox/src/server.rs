//! Routing and CORS.
//!
//! CORS follows SMART S-5: discovery documents and the JWKS are readable from
//! any origin; the token and introspection endpoints and the FHIR API only
//! from origins of registered redirect or launch URIs, so a browser app under test behaves here as it
//! would at a real EHR that registered it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::state::Shared;
use crate::{authorize, discovery, fhir, introspect, launch, oidc, token};

/// Builds the sandbox router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(discovery::index))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(discovery::smart_configuration),
        )
        .route(
            "/fhir/.well-known/openid-configuration",
            get(oidc::openid_configuration),
        )
        .route("/fhir/metadata", get(discovery::metadata))
        .route("/fhir", any(fhir::entry))
        .route("/fhir/", any(fhir::entry))
        .route("/fhir/{*rest}", any(fhir::entry))
        .route(
            "/auth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/auth/token", post(token::token))
        .route("/auth/introspect", post(introspect::introspect))
        .route("/auth/jwks", get(oidc::jwks))
        .route("/sandbox/launch", post(launch::launch_json))
        .route("/sandbox/ehr-launch", get(launch::launch_redirect))
        .route("/smart-style.json", get(discovery::smart_style))
        .layer(middleware::from_fn_with_state(shared.clone(), cors))
        // Clients send `Accept-Encoding: gzip`; search pages are large.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(shared)
}

fn is_public_document(path: &str) -> bool {
    path == "/fhir/.well-known/smart-configuration"
        || path == "/fhir/.well-known/openid-configuration"
        || path == "/fhir/metadata"
        || path == "/auth/jwks"
        || path == "/smart-style.json"
}

fn is_protected_api(path: &str) -> bool {
    path == "/auth/token"
        || path == "/auth/introspect"
        || path == "/fhir"
        || path.starts_with("/fhir/")
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

    if is_public_document(&path) {
        if preflight {
            return preflight_response(HeaderValue::from_static("*"));
        }
        return next.run(request).await;
    }
    let allowed = origin
        .filter(|o| is_protected_api(&path) && shared.is_registered_origin(o))
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
