//! Microsoft Entra ID: the client-credentials token endpoint, OpenID discovery, and the access
//! tokens every other endpoint checks.
//!
//! Tokens are ES256 JWTs signed by the emulator with the claims real v1 access tokens carry
//! (`aud`, `iss`, `iat`, `nbf`, `exp`, `oid`, `sub`, `tid`, `appid`, `idtyp`, `ver`, and
//! `xms_mirid` for managed identities).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

use crate::control_plane::ControlPlane;
use crate::directory::SecretCheck;

/// Well-known resource audiences.
pub mod audience {
    /// Azure Resource Manager.
    pub const ARM: &str = "https://management.azure.com";
    /// The legacy ARM audience, still accepted by ARM.
    pub const ARM_LEGACY: &str = "https://management.core.windows.net";
    /// Microsoft Graph.
    pub const GRAPH: &str = "https://graph.microsoft.com";
    /// Azure Container Registry (what the credential provider asks IMDS for).
    pub const ACR: &str = "https://containerregistry.azure.net";
}

/// Lifetime of client-credential tokens (what Entra reports as `expires_in`).
const CLIENT_TOKEN_SECONDS: i64 = 3599;

/// The claims of an emulator-issued access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub oid: String,
    pub sub: String,
    pub tid: String,
    pub appid: String,
    pub idtyp: String,
    pub ver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
}

/// Who a token is for.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// Object id (what role assignments name).
    pub object_id: String,
    /// Client (application) id.
    pub app_id: String,
    /// The managed identity's resource id, for managed identities.
    pub managed_identity: Option<String>,
}

/// An issued token and its times.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    pub token: String,
    pub issued_at: OffsetDateTime,
    pub expires_on: OffsetDateTime,
}

/// Signs an access token for `principal` and `aud`, valid `lifetime` from now.
pub(crate) fn issue(cp: &ControlPlane, principal: &Principal, aud: &str, lifetime: Duration) -> IssuedToken {
    let now = cp.now();
    let exp = now + lifetime;
    let claims = AccessClaims {
        aud: aud.to_string(),
        iss: cp.settings.entra_issuer(),
        iat: now.unix_timestamp(),
        nbf: now.unix_timestamp(),
        exp: exp.unix_timestamp(),
        oid: principal.object_id.clone(),
        sub: principal.object_id.clone(),
        tid: cp.settings.tenant_id.clone(),
        appid: principal.app_id.clone(),
        idtyp: "app".into(),
        ver: "1.0".into(),
        xms_mirid: principal.managed_identity.clone(),
    };
    IssuedToken { token: cp.signer.sign(&claims, false), issued_at: now, expires_on: exp }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>`.
    NotBearer,
    /// Not a token this emulator signed.
    Invalid,
    /// Past `exp`.
    Expired { exp: i64, now: i64 },
    /// Issued for another resource.
    WrongAudience(String),
    /// Issued by another tenant or issuer (carries the token's `iss`).
    WrongTenant(String),
}

/// The bearer token of a request.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    let value = headers.get(header::AUTHORIZATION).ok_or(Rejection::Missing)?;
    let value = value.to_str().map_err(|_| Rejection::NotBearer)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(Rejection::NotBearer),
    }
}

/// Compares audiences as Azure does (case-insensitive, trailing `/` ignored).
pub(crate) fn same_audience(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Verifies an emulator-issued access token for one of `audiences`.
pub(crate) fn verify(cp: &ControlPlane, token: &str, audiences: &[&str]) -> Result<AccessClaims, Rejection> {
    let claims: AccessClaims = cp.signer.verify(token).map_err(|_| Rejection::Invalid)?;
    // Another tenant's token, or an issuer this tenant does not trust: Azure answers both as the
    // wrong issuer.
    if claims.iss != cp.settings.entra_issuer() || !claims.tid.eq_ignore_ascii_case(&cp.settings.tenant_id) {
        return Err(Rejection::WrongTenant(claims.iss));
    }
    let now = cp.now().unix_timestamp();
    if claims.exp <= now {
        return Err(Rejection::Expired { exp: claims.exp, now });
    }
    if !audiences.iter().any(|a| same_audience(a, &claims.aud)) {
        return Err(Rejection::WrongAudience(claims.aud));
    }
    Ok(claims)
}

/// The form of `POST /{tenant}/oauth2/v2.0/token` (and the v1 `/oauth2/token`).
#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// An Entra error answer (`error`, `error_description` with the AADSTS text, `error_codes`...).
pub(crate) struct EntraFailure {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
    now: OffsetDateTime,
}

impl IntoResponse for EntraFailure {
    fn into_response(self) -> Response {
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
        let timestamp = self.now.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (self.status, Json(body)).into_response()
    }
}

fn missing(now: OffsetDateTime, field: &str) -> EntraFailure {
    EntraFailure {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        code: 900144,
        description: format!("The request body must contain the following parameter: '{field}'."),
        now,
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token_v2(
    State(cp): State<Arc<ControlPlane>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    token(&cp, &tenant, &headers, &body, true).unwrap_or_else(IntoResponse::into_response)
}

/// `POST /{tenant}/oauth2/token` (v1: `resource` instead of `scope`).
pub(crate) async fn token_v1(
    State(cp): State<Arc<ControlPlane>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    token(&cp, &tenant, &headers, &body, false).unwrap_or_else(IntoResponse::into_response)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[tracing::instrument(name = "entra.token", skip_all, fields(tenant = %tenant, client_id))]
fn token(
    cp: &ControlPlane,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    v2: bool,
) -> Result<Response, EntraFailure> {
    let now = cp.now();
    let form: TokenForm = serde_urlencoded::from_bytes(body).map_err(|_| missing(now, "grant_type"))?;
    if !tenant.eq_ignore_ascii_case(&cp.settings.tenant_id) {
        return Err(EntraFailure {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            code: 90002,
            description: format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
            now,
        });
    }
    let grant = form.grant_type.as_deref().ok_or_else(|| missing(now, "grant_type"))?;
    if grant != "client_credentials" {
        return Err(EntraFailure {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            code: 70003,
            description: format!("The app requested an unsupported grant type '{grant}'."),
            now,
        });
    }
    let (client_id, secret) = match (form.client_id, form.client_secret, basic_credentials(headers)) {
        (_, _, Some((id, secret))) => (id, Some(secret)),
        (Some(id), secret, None) => (id, secret),
        (None, _, None) => return Err(missing(now, "client_id")),
    };
    tracing::Span::current().record("client_id", client_id.as_str());
    let audience = if v2 {
        let scope = form.scope.ok_or_else(|| missing(now, "scope"))?;
        let first = scope.split_whitespace().next().unwrap_or_default().to_string();
        match first.strip_suffix("/.default") {
            Some(resource) if !resource.is_empty() => resource.to_string(),
            _ => {
                return Err(EntraFailure {
                    status: StatusCode::BAD_REQUEST,
                    error: "invalid_scope",
                    code: 1002012,
                    description: format!(
                        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                    ),
                    now,
                });
            }
        }
    } else {
        form.resource.ok_or_else(|| missing(now, "resource"))?
    };
    let Some(secret) = secret else {
        return Err(EntraFailure {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            code: 7000216,
            description:
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."
                    .into(),
            now,
        });
    };
    let check = cp.read(|s| s.directory.check_secret(&client_id, &secret, now));
    let object_id = match check {
        SecretCheck::Valid { service_principal: Some(sp) } => sp,
        SecretCheck::Valid { service_principal: None } => {
            return Err(EntraFailure {
                status: StatusCode::BAD_REQUEST,
                error: "invalid_client",
                code: 7000229,
                description: format!(
                    "The client application {client_id} is missing service principal in the tenant {}.",
                    cp.settings.tenant_id
                ),
                now,
            });
        }
        SecretCheck::UnknownApp => {
            return Err(EntraFailure {
                status: StatusCode::BAD_REQUEST,
                error: "unauthorized_client",
                code: 700016,
                description: format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                    cp.settings.tenant_id
                ),
                now,
            });
        }
        SecretCheck::Expired => {
            tracing::info!("client secret expired");
            return Err(EntraFailure {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_client",
                code: 7000222,
                description: format!(
                    "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
                ),
                now,
            });
        }
        SecretCheck::Wrong => {
            tracing::info!("client secret does not match");
            return Err(EntraFailure {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_client",
                code: 7000215,
                description: format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
                now,
            });
        }
    };
    let principal = Principal { object_id, app_id: client_id, managed_identity: None };
    let issued = issue(cp, &principal, &audience, Duration::seconds(CLIENT_TOKEN_SECONDS));
    tracing::info!(aud = %audience, "issued a client-credentials token");
    let body = if v2 {
        json!({
            "token_type": "Bearer",
            "expires_in": CLIENT_TOKEN_SECONDS,
            "ext_expires_in": CLIENT_TOKEN_SECONDS,
            "access_token": issued.token,
        })
    } else {
        json!({
            "token_type": "Bearer",
            "expires_in": CLIENT_TOKEN_SECONDS.to_string(),
            "ext_expires_in": CLIENT_TOKEN_SECONDS.to_string(),
            "expires_on": issued.expires_on.unix_timestamp().to_string(),
            "not_before": issued.issued_at.unix_timestamp().to_string(),
            "resource": audience,
            "access_token": issued.token,
        })
    };
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store, no-cache")], Json(body)).into_response())
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(State(cp): State<Arc<ControlPlane>>, Path(tenant): Path<String>) -> Response {
    let base = &cp.settings.base_url;
    Json(json!({
        "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(crate) async fn keys(State(cp): State<Arc<ControlPlane>>) -> Response {
    Json(json!({"keys": [cp.signer.jwk()]})).into_response()
}

/// `GET /common/discovery/instance` (MSAL's instance discovery).
pub(crate) async fn instance_discovery(State(cp): State<Arc<ControlPlane>>) -> Response {
    let base = &cp.settings.base_url;
    let host = base.trim_start_matches("https://");
    Json(json!({
        "tenant_discovery_endpoint": format!("{base}/{}/v2.0/.well-known/openid-configuration", cp.settings.tenant_id),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }))
    .into_response()
}
