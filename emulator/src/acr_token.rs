//! ACR's token service on each registry's login server: `POST /oauth2/exchange` (Entra token ->
//! ACR refresh token), `POST /oauth2/token` (refresh token -> access token; `password` grants are
//! refused with 400 as ACR does, so containerd falls back to GET), and `GET /oauth2/token` with
//! Basic credentials (refresh token, service principal secret, admin password) or none.
//!
//! Requests are routed by `Host` (the login server) or by the path prefix
//! `/acr/{loginServer}/oauth2/...`. Access tokens are JWTs distribution's `auth.token` verifies:
//! `iss` = the configured issuer, `aud` = the login server, an `access` claim, signed ES256 with
//! the signing certificate chain in `x5c`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use azure_model::Resource;
use azure_model::container_registry::RegistryProperties;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::acr_access::{self, Access, Caller};
use crate::control_plane::ControlPlane;
use crate::directory::SecretCheck;
use crate::entra::{self, audience};
use crate::server::PeerAddr;

/// The user name under which an ACR refresh token is presented as a password.
pub const REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";
const REFRESH_TOKEN_SECONDS: i64 = 3 * 3600;
const ACCESS_TOKEN_SECONDS: i64 = 75 * 60;

/// An ACR error answer: `{"errors": [{"code", "message", "detail"}]}`.
struct AcrFailure {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Option<Value>,
    challenge: Option<String>,
}

impl AcrFailure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), detail: None, challenge: None }
    }

    fn unauthorized(login_server: &str, detail: Option<Value>) -> Self {
        Self {
            detail,
            challenge: Some(format!("Bearer realm=\"https://{login_server}/oauth2/token\",service=\"{login_server}\"")),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required, visit https://aka.ms/acr/authorization for more information.",
            )
        }
    }

    fn denied(ip: IpAddr) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            format!("client with IP '{ip}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."),
        )
    }

    fn unsupported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", message)
    }
}

impl IntoResponse for AcrFailure {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.detail {
            error["detail"] = d;
        }
        let mut resp = (self.status, Json(json!({ "errors": [error] }))).into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}

/// Claims of an ACR refresh token.
#[derive(Debug, Serialize, Deserialize)]
struct RefreshClaims {
    jti: String,
    sub: String,
    nbf: i64,
    exp: i64,
    iat: i64,
    iss: String,
    aud: String,
    version: String,
    grant_type: String,
    tenant: String,
}

/// Claims of a registry access token (what distribution reads).
#[derive(Debug, Serialize)]
struct AccessClaims {
    jti: String,
    sub: String,
    nbf: i64,
    exp: i64,
    iat: i64,
    iss: String,
    aud: String,
    version: String,
    grant_type: String,
    access: Vec<Access>,
}

/// The registry a request is for: the path's login server, else `Host`, else `service`.
fn registry(
    cp: &ControlPlane,
    explicit: Option<&str>,
    headers: &HeaderMap,
    service: Option<&str>,
) -> Result<Resource<RegistryProperties>, AcrFailure> {
    let inv = cp.read(|s| s.inventory());
    let host =
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
    let candidates = [explicit, host, service];
    candidates.into_iter().flatten().find_map(|name| inv.registry_by_login_server(name).cloned()).ok_or_else(|| {
        AcrFailure::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no registry has the login server '{}'", explicit.or(host).or(service).unwrap_or_default()),
        )
    })
}

fn login_server(r: &Resource<RegistryProperties>) -> String {
    r.properties.login_server.clone().unwrap_or_default().to_ascii_lowercase()
}

fn check_network(cp: &ControlPlane, r: &Resource<RegistryProperties>, peer: IpAddr) -> Result<(), AcrFailure> {
    let private = cp.read(|s| s.private_sources.contains(&peer));
    if acr_access::network_allows(r, peer, private) {
        Ok(())
    } else {
        tracing::info!(client = %peer, registry = %r.name, "registry firewall denies the client");
        Err(AcrFailure::denied(peer))
    }
}

fn check_service(r: &Resource<RegistryProperties>, service: Option<&str>) -> Result<(), AcrFailure> {
    match service {
        Some(s) if !s.eq_ignore_ascii_case(&login_server(r)) => Err(AcrFailure::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            format!("the service '{s}' does not match the login server '{}'", login_server(r)),
        )),
        _ => Ok(()),
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// `POST /oauth2/exchange`.
pub(crate) async fn exchange_by_host(
    State(cp): State<Arc<ControlPlane>>,
    axum::Extension(PeerAddr(peer)): axum::Extension<PeerAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    exchange(&cp, None, peer.ip().to_canonical(), &headers, &body).unwrap_or_else(IntoResponse::into_response)
}

/// `POST /acr/{loginServer}/oauth2/exchange`.
pub(crate) async fn exchange_by_path(
    State(cp): State<Arc<ControlPlane>>,
    axum::Extension(PeerAddr(peer)): axum::Extension<PeerAddr>,
    Path(login): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    exchange(&cp, Some(&login), peer.ip().to_canonical(), &headers, &body).unwrap_or_else(IntoResponse::into_response)
}

#[tracing::instrument(name = "acr.exchange", skip_all, fields(client = %peer))]
fn exchange(
    cp: &ControlPlane,
    explicit: Option<&str>,
    peer: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, AcrFailure> {
    let fields = form(body);
    let r = registry(cp, explicit, headers, field(&fields, "service"))?;
    check_network(cp, &r, peer)?;
    check_service(&r, field(&fields, "service"))?;
    let login = login_server(&r);
    match field(&fields, "grant_type") {
        Some("access_token") | Some("access_token_refresh_token") => {}
        Some(other) => {
            return Err(AcrFailure::unsupported(format!("grant type '{other}' is not supported by /oauth2/exchange")));
        }
        None => return Err(AcrFailure::unsupported("missing parameter 'grant_type'")),
    }
    let token =
        field(&fields, "access_token").ok_or_else(|| AcrFailure::unsupported("missing parameter 'access_token'"))?;
    let claims = entra::verify(cp, token, &[audience::ACR, audience::ARM, audience::ARM_LEGACY]).map_err(|why| {
        tracing::info!(?why, "Entra token refused by the exchange");
        AcrFailure::unauthorized(&login, Some(json!(format!("invalid Entra access token: {why:?}"))))
    })?;
    if let Some(t) = field(&fields, "tenant")
        && !t.eq_ignore_ascii_case(&claims.tid)
    {
        return Err(AcrFailure::unauthorized(&login, Some(json!("the tenant does not match the access token"))));
    }
    let now = cp.now().unix_timestamp();
    let refresh = RefreshClaims {
        jti: uuid::Uuid::new_v4().to_string(),
        sub: claims.oid.clone(),
        nbf: now,
        exp: now + REFRESH_TOKEN_SECONDS,
        iat: now,
        iss: cp.settings.registry_token_issuer.clone(),
        aud: login.clone(),
        version: "1.0".into(),
        grant_type: "refresh_token".into(),
        tenant: claims.tid,
    };
    tracing::info!(principal = %claims.oid, registry = %login, "ACR refresh token issued");
    Ok(Json(json!({ "refresh_token": cp.signer.sign(&refresh, false) })).into_response())
}

fn verify_refresh(cp: &ControlPlane, token: &str, login: &str) -> Option<String> {
    let claims: RefreshClaims = cp.signer.verify(token).ok()?;
    let now = cp.now().unix_timestamp();
    (claims.grant_type == "refresh_token"
        && claims.iss == cp.settings.registry_token_issuer
        && claims.aud.eq_ignore_ascii_case(login)
        && claims.exp > now)
        .then_some(claims.sub)
}

/// `GET /oauth2/token`.
pub(crate) async fn token_get_by_host(
    State(cp): State<Arc<ControlPlane>>,
    axum::Extension(PeerAddr(peer)): axum::Extension<PeerAddr>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    token_get(&cp, None, peer.ip().to_canonical(), &headers, &query).unwrap_or_else(IntoResponse::into_response)
}

/// `GET /acr/{loginServer}/oauth2/token`.
pub(crate) async fn token_get_by_path(
    State(cp): State<Arc<ControlPlane>>,
    axum::Extension(PeerAddr(peer)): axum::Extension<PeerAddr>,
    Path(login): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    token_get(&cp, Some(&login), peer.ip().to_canonical(), &headers, &query).unwrap_or_else(IntoResponse::into_response)
}

fn basic(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let (scheme, b64) = value.to_str().ok()?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?).ok()?;
        let (user, pass) = text.split_once(':')?;
        Some((user.to_string(), pass.to_string()))
    })();
    Some(parsed.ok_or(()))
}

/// Who the Basic credentials name, or `None` when they are not valid.
fn authenticate(cp: &ControlPlane, r: &Resource<RegistryProperties>, user: &str, password: &str) -> Option<Caller> {
    let login = login_server(r);
    if user == REFRESH_TOKEN_USER {
        return verify_refresh(cp, password, &login).map(Caller::Principal);
    }
    if user.eq_ignore_ascii_case(&r.name) {
        let enabled = r.properties.admin_user_enabled.unwrap_or(false);
        let matches = cp.read(|s| {
            s.admin_passwords
                .get(&r.id.to_ascii_lowercase())
                .is_some_and(|p| p.iter().any(|secret| secret.expose() == password))
        });
        tracing::info!(admin_enabled = enabled, password_current = matches, "admin user login");
        return (enabled && matches).then_some(Caller::Admin);
    }
    let now = cp.now();
    match cp.read(|s| s.directory.check_secret(user, password, now)) {
        SecretCheck::Valid { service_principal: Some(sp) } => Some(Caller::Principal(sp)),
        other => {
            tracing::info!(app_id = %user, outcome = ?other, "service principal login refused");
            None
        }
    }
}

#[tracing::instrument(name = "acr.token", skip_all, fields(client = %peer))]
fn token_get(
    cp: &ControlPlane,
    explicit: Option<&str>,
    peer: IpAddr,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Response, AcrFailure> {
    let service = field(query, "service");
    let r = registry(cp, explicit, headers, service)?;
    check_network(cp, &r, peer)?;
    check_service(&r, service)?;
    let requested = acr_access::parse_scopes(query.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()));
    let caller = match basic(headers) {
        None => Caller::Anonymous,
        Some(Ok((user, password))) => authenticate(cp, &r, &user, &password)
            .ok_or_else(|| AcrFailure::unauthorized(&login_server(&r), requested_detail(&requested)))?,
        Some(Err(())) => return Err(AcrFailure::unauthorized(&login_server(&r), requested_detail(&requested))),
    };
    issue(cp, &r, &caller, &requested)
}

/// `POST /oauth2/token`.
pub(crate) async fn token_post_by_host(
    State(cp): State<Arc<ControlPlane>>,
    axum::Extension(PeerAddr(peer)): axum::Extension<PeerAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    token_post(&cp, None, peer.ip().to_canonical(), &headers, &body).unwrap_or_else(IntoResponse::into_response)
}

/// `POST /acr/{loginServer}/oauth2/token`.
pub(crate) async fn token_post_by_path(
    State(cp): State<Arc<ControlPlane>>,
    axum::Extension(PeerAddr(peer)): axum::Extension<PeerAddr>,
    Path(login): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    token_post(&cp, Some(&login), peer.ip().to_canonical(), &headers, &body).unwrap_or_else(IntoResponse::into_response)
}

#[tracing::instrument(name = "acr.token", skip_all, fields(client = %peer))]
fn token_post(
    cp: &ControlPlane,
    explicit: Option<&str>,
    peer: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, AcrFailure> {
    let fields = form(body);
    let service = field(&fields, "service");
    let r = registry(cp, explicit, headers, service)?;
    check_network(cp, &r, peer)?;
    check_service(&r, service)?;
    let requested = acr_access::parse_scopes(fields.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()));
    match field(&fields, "grant_type") {
        Some("refresh_token") => {
            let token = field(&fields, "refresh_token")
                .ok_or_else(|| AcrFailure::unsupported("missing parameter 'refresh_token'"))?;
            let principal = verify_refresh(cp, token, &login_server(&r))
                .ok_or_else(|| AcrFailure::unauthorized(&login_server(&r), requested_detail(&requested)))?;
            issue(cp, &r, &Caller::Principal(principal), &requested)
        }
        Some(other) => Err(AcrFailure::unsupported(format!("grant type '{other}' is not supported"))),
        None => Err(AcrFailure::unsupported("missing parameter 'grant_type'")),
    }
}

fn requested_detail(requested: &[Access]) -> Option<Value> {
    if requested.is_empty() {
        return None;
    }
    Some(json!(
        requested
            .iter()
            .flat_map(|a| a.actions.iter().map(move |action| json!({"Type": a.kind, "Name": a.name, "Action": action})))
            .collect::<Vec<_>>()
    ))
}

fn issue(
    cp: &ControlPlane,
    r: &Resource<RegistryProperties>,
    caller: &Caller,
    requested: &[Access],
) -> Result<Response, AcrFailure> {
    let login = login_server(r);
    let allowed = cp.read(|s| match caller {
        // The operator stands for the subscription's Owner (the emulator has no ARM RBAC, and
        // its operator may do anything in ARM): Owner pulls, pushes and deletes in legacy mode,
        // and, holding no data actions, nothing in ABAC mode.
        Caller::Principal(oid) if s.directory.is_internal_principal(oid) => {
            if r.properties.abac_mode() {
                vec![]
            } else {
                use crate::roles::RegistryOperation::*;
                vec![Pull, Push, Delete]
            }
        }
        // A read-only identity holds AcrPull and Container Registry Repository Reader on every
        // registry: it pulls (reads tags and manifests) in either mode, and nothing more.
        Caller::Principal(oid) if s.directory.is_reader_principal(oid) => vec![crate::roles::RegistryOperation::Pull],
        _ => acr_access::allowed_operations(&s.inventory(), &s.store, r, caller),
    });
    let granted = acr_access::grant(requested, &allowed);
    let refuse = match caller {
        Caller::Anonymous => allowed.is_empty() || (!requested.is_empty() && granted.is_empty()),
        _ => !requested.is_empty() && granted.is_empty(),
    };
    if refuse {
        tracing::info!(?caller, registry = %login, "no requested access granted");
        return Err(AcrFailure::unauthorized(&login, requested_detail(requested)));
    }
    let now = cp.now().unix_timestamp();
    let sub = match caller {
        Caller::Anonymous => String::new(),
        Caller::Principal(p) => p.clone(),
        Caller::Admin => r.name.clone(),
    };
    let claims = AccessClaims {
        jti: uuid::Uuid::new_v4().to_string(),
        sub,
        nbf: now,
        exp: now + ACCESS_TOKEN_SECONDS,
        iat: now,
        iss: cp.settings.registry_token_issuer.clone(),
        aud: login.clone(),
        version: "1.0".into(),
        grant_type: "access_token".into(),
        access: granted,
    };
    tracing::info!(?caller, registry = %login, access = ?claims.access, "registry access token issued");
    Ok(Json(json!({ "access_token": cp.signer.sign(&claims, true) })).into_response())
}
