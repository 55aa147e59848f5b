//! Microsoft Graph v1.0 subset: applications (get, list by `appId`, create, `addPassword`,
//! `removePassword`) and service principals (get, list by `appId`, create).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use azure_model::graph::{Application, PasswordCredential, ServicePrincipal, parse_time};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control_plane::ControlPlane;
use crate::directory::DirectoryError;
use crate::entra::{self, Rejection, audience};

const METADATA: &str = "https://graph.microsoft.com/v1.0/$metadata";

/// A Graph error answer: `{"error": {"code", "message", "innerError"}}`.
#[derive(Debug)]
struct GraphFailure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphFailure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }
}

impl IntoResponse for GraphFailure {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "request-id": uuid::Uuid::new_v4().to_string(),
                "client-request-id": uuid::Uuid::new_v4().to_string(),
            }
        }});
        (self.status, Json(body)).into_response()
    }
}

fn credential_body(c: &PasswordCredential) -> Value {
    json!({
        "customKeyIdentifier": null,
        "displayName": c.display_name,
        "endDateTime": c.end_date_time,
        "hint": c.hint,
        "keyId": c.key_id,
        "secretText": c.secret_text,
        "startDateTime": c.start_date_time,
    })
}

fn application_body(app: &Application, entity: bool) -> Value {
    let mut v = json!({
        "id": app.id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "deletedDateTime": null,
        "signInAudience": "AzureADMyOrg",
        "identifierUris": [],
        "tags": [],
        "keyCredentials": [],
        "passwordCredentials": app.password_credentials.iter().map(credential_body).collect::<Vec<_>>(),
    });
    if entity {
        v["@odata.context"] = json!(format!("{METADATA}#applications/$entity"));
    }
    v
}

fn service_principal_body(sp: &ServicePrincipal, tenant: &str, entity: bool) -> Value {
    let mut v = json!({
        "id": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "accountEnabled": true,
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": tenant,
        "servicePrincipalNames": [sp.app_id],
        "passwordCredentials": [],
        "keyCredentials": [],
    });
    if entity {
        v["@odata.context"] = json!(format!("{METADATA}#servicePrincipals/$entity"));
    }
    v
}

/// `applications`, `applications/{id}`, `applications(appId='{appId}')`, and the same for
/// `servicePrincipals`, optionally followed by an action.
#[derive(Debug, PartialEq)]
struct GraphPath {
    collection: String,
    key: Option<String>,
    action: Option<String>,
}

fn parse_path(rest: &str) -> Option<GraphPath> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let first = *segs.first()?;
    let (collection, mut key, mut next) = match first.split_once('(') {
        Some((coll, args)) => {
            let inner = args.strip_suffix(')')?;
            let (name, value) = inner.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("appId") {
                return None;
            }
            let value = value.trim().trim_matches('\'').to_string();
            (coll.to_string(), Some(value), 1)
        }
        None => (first.to_string(), None, 1),
    };
    if key.is_none() && segs.len() > 1 {
        key = Some(segs[1].to_string());
        next = 2;
    }
    let action = segs.get(next).map(|s| s.to_string());
    if segs.len() > next + 1 {
        return None;
    }
    Some(GraphPath { collection, key, action })
}

fn app_id_filter(filter: Option<&str>) -> Result<Option<String>, GraphFailure> {
    let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) else { return Ok(None) };
    let lower = f.to_ascii_lowercase();
    match lower.strip_prefix("appid eq ") {
        Some(_) => Ok(Some(f[9..].trim().trim_matches('\'').to_string())),
        None => Err(GraphFailure::bad_request(format!("Unsupported filter '{f}': only appId eq '...' is supported."))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddPassword {
    #[serde(default)]
    password_credential: NewCredential,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewCredential {
    display_name: Option<String>,
    start_date_time: Option<String>,
    end_date_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemovePassword {
    key_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewApplication {
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewServicePrincipal {
    app_id: String,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GraphFailure> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|_| {
        GraphFailure::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    })
}

fn directory_failure(e: DirectoryError) -> GraphFailure {
    match e {
        DirectoryError::NoSuchApplication(id) => GraphFailure::not_found(&id),
        DirectoryError::NoSuchKey(k) => {
            GraphFailure::bad_request(format!("No password credential with keyId '{k}' exists on the application."))
        }
        DirectoryError::ServicePrincipalExists(app) => GraphFailure::new(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            format!("Another object with the same value for property appId '{app}' already exists."),
        ),
    }
}

fn authenticate(cp: &ControlPlane, headers: &HeaderMap) -> Result<String, GraphFailure> {
    let unauthorized = |m: &str| GraphFailure::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let token = entra::bearer(headers).map_err(|r| match r {
        Rejection::Missing => unauthorized("Access token is empty."),
        _ => unauthorized("CompactToken parsing failed with error code: 80049217"),
    })?;
    match entra::verify(cp, token, &[audience::GRAPH]) {
        Ok(claims) => Ok(claims.oid),
        Err(Rejection::Expired { .. }) => Err(unauthorized("Lifetime validation failed, the token is expired.")),
        Err(Rejection::WrongAudience(_)) => Err(unauthorized("Access token validation failure. Invalid audience.")),
        Err(_) => Err(unauthorized("Access token validation failure.")),
    }
}

/// Answers `/v1.0/...`.
pub(crate) async fn handle(
    State(cp): State<Arc<ControlPlane>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> Response {
    let span = tracing::info_span!("graph", %method, path = %uri.path());
    let _enter = span.enter();
    dispatch(&cp, &method, &uri, &headers, &query, &body).unwrap_or_else(|f| {
        tracing::info!(status = f.status.as_u16(), code = f.code, "Graph request refused");
        f.into_response()
    })
}

fn dispatch(
    cp: &ControlPlane,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &[(String, String)],
    body: &[u8],
) -> Result<Response, GraphFailure> {
    let caller = authenticate(cp, headers)?;
    // A read-only identity holds Application.Read.All: it reads, and nothing else.
    if *method != Method::GET && cp.read(|s| s.directory.is_reader_principal(&caller)) {
        cp.record_refusal(format!("Graph {method} {}: Authorization_RequestDenied", uri.path()));
        return Err(GraphFailure::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    let rest = uri.path().strip_prefix("/v1.0").unwrap_or_default();
    let path = parse_path(rest).ok_or_else(|| {
        GraphFailure::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{rest}'."),
        )
    })?;
    let filter = query.iter().find(|(k, _)| k.eq_ignore_ascii_case("$filter")).map(|(_, v)| v.as_str());
    let tenant = cp.settings.tenant_id.clone();
    let ok = |v: Value| Ok((StatusCode::OK, Json(v)).into_response());
    match (
        path.collection.to_ascii_lowercase().as_str(),
        path.key.as_deref(),
        path.action.as_deref().map(str::to_ascii_lowercase),
        method.clone(),
    ) {
        ("applications", None, None, Method::GET) => {
            let app_id = app_id_filter(filter)?;
            let apps = cp.read(|s| s.directory.applications());
            let value: Vec<Value> = apps
                .iter()
                .filter(|a| app_id.as_deref().is_none_or(|id| a.app_id.eq_ignore_ascii_case(id)))
                .map(|a| application_body(a, false))
                .collect();
            ok(json!({"@odata.context": format!("{METADATA}#applications"), "value": value}))
        }
        ("applications", None, None, Method::POST) => {
            let req: NewApplication = json_body(body)?;
            let app = cp.mutate(|s| s.directory.create_application(&req.display_name, false));
            tracing::info!(app_id = %app.app_id, "application created");
            Ok((StatusCode::CREATED, Json(application_body(&app, true))).into_response())
        }
        ("applications", Some(key), None, Method::GET) => {
            let app = cp.read(|s| s.directory.application(key).cloned()).ok_or_else(|| GraphFailure::not_found(key))?;
            ok(application_body(&app, true))
        }
        ("applications", Some(key), Some(action), Method::POST) if action == "addpassword" => {
            let req: AddPassword = json_body(body)?;
            let parse = |t: Option<String>, field: &str| -> Result<Option<time::OffsetDateTime>, GraphFailure> {
                match t {
                    None => Ok(None),
                    Some(t) => parse_time(&t).map(Some).ok_or_else(|| {
                        GraphFailure::bad_request(format!("Invalid value specified for property '{field}'."))
                    }),
                }
            };
            let start = parse(req.password_credential.start_date_time, "startDateTime")?;
            let end = parse(req.password_credential.end_date_time, "endDateTime")?;
            let now = cp.now();
            // Entra refuses a credential whose validity ends before it starts (the start
            // defaults to now, so an end in the past is refused): 400
            // `KeyCredentialsInvalidEndDate` "Key credential end date is invalid.", the code and
            // text Graph answers for invalid credential end dates (quoted in public Terraform and
            // Graph client logs); the same check covers password credentials.
            if let Some(end) = end
                && end <= start.unwrap_or(now)
            {
                return Err(GraphFailure::new(
                    StatusCode::BAD_REQUEST,
                    "KeyCredentialsInvalidEndDate",
                    "Key credential end date is invalid.",
                ));
            }
            let cred = cp
                .mutate(|s| s.directory.add_password(key, req.password_credential.display_name, start, end, now))
                .map_err(directory_failure)?;
            tracing::info!(app = %key, key_id = ?cred.key_id, "password credential added");
            let mut body = credential_body(&cred);
            body["@odata.context"] = json!(format!("{METADATA}#microsoft.graph.passwordCredential"));
            ok(body)
        }
        ("applications", Some(key), Some(action), Method::POST) if action == "removepassword" => {
            let req: RemovePassword = json_body(body)?;
            cp.mutate(|s| s.directory.remove_password(key, &req.key_id)).map_err(directory_failure)?;
            tracing::info!(app = %key, key_id = %req.key_id, "password credential removed");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("serviceprincipals", None, None, Method::GET) => {
            let app_id = app_id_filter(filter)?;
            let sps = cp.read(|s| s.directory.service_principals().to_vec());
            let value: Vec<Value> = sps
                .iter()
                .filter(|sp| app_id.as_deref().is_none_or(|id| sp.app_id.eq_ignore_ascii_case(id)))
                .map(|sp| service_principal_body(sp, &tenant, false))
                .collect();
            ok(json!({"@odata.context": format!("{METADATA}#servicePrincipals"), "value": value}))
        }
        ("serviceprincipals", None, None, Method::POST) => {
            let req: NewServicePrincipal = json_body(body)?;
            let sp = cp.mutate(|s| s.directory.create_service_principal(&req.app_id)).map_err(directory_failure)?;
            Ok((StatusCode::CREATED, Json(service_principal_body(&sp, &tenant, true))).into_response())
        }
        ("serviceprincipals", Some(key), None, Method::GET) => {
            let by_app = path_is_app_key(rest);
            let sp = cp
                .read(|s| {
                    if by_app {
                        s.directory.service_principal_of(key).cloned()
                    } else {
                        s.directory.service_principal(key).cloned()
                    }
                })
                .ok_or_else(|| GraphFailure::not_found(key))?;
            ok(service_principal_body(&sp, &tenant, true))
        }
        _ => Err(GraphFailure::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Unsupported request: {method} /v1.0{rest}"),
        )),
    }
}

fn path_is_app_key(rest: &str) -> bool {
    rest.split('/').find(|s| !s.is_empty()).is_some_and(|s| s.contains('('))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse_path("/applications(appId='abc')/addPassword").unwrap();
        assert_eq!(
            p,
            GraphPath {
                collection: "applications".into(),
                key: Some("abc".into()),
                action: Some("addPassword".into())
            }
        );
        let p = parse_path("/applications/obj").unwrap();
        assert_eq!(p.key.as_deref(), Some("obj"));
        assert!(p.action.is_none());
        assert!(parse_path("/applications/a/b/c").is_none());
        assert!(parse_path("/applications(displayName='x')").is_none());
        assert_eq!(app_id_filter(Some("appId eq 'X'")).unwrap().as_deref(), Some("X"));
        assert!(app_id_filter(Some("displayName eq 'x'")).is_err());
    }
}
