//! The Azure Resource Manager subset: authentication, api-version checks, path routing and the
//! generic resource lifecycle (PUT/PATCH/GET/DELETE/list), with per-provider rules in the
//! submodules.

mod access;
mod authorization;
pub(crate) mod catalog;
mod compute;
mod container_registry;
mod container_service;
pub(crate) mod error;
mod network;
pub(crate) mod operations;
mod path;
mod private_dns;
mod resource_groups;
mod validate;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use azure_model::ResourceId;
use azure_model::inventory::types;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::control_plane::ControlPlane;
use crate::entra::{self, Rejection, audience};
use crate::state::State as EmulatorState;
use crate::state::derived::{children, upsert_child};
use crate::state::store::id_of;
use catalog::{Etag, Location, Placement, TypeSpec};
pub(crate) use error::ArmFailure;
use path::Target;

/// What every provider hook gets.
pub(crate) struct Ctx<'a> {
    pub cp: &'a ControlPlane,
    /// The caller's object id.
    pub caller: String,
    pub query: Vec<(String, String)>,
    pub now: OffsetDateTime,
}

impl Ctx<'_> {
    /// A query parameter (case-insensitive name).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn subscription(&self) -> &str {
        &self.cp.settings.subscription_id
    }

    pub fn tenant(&self) -> &str {
        &self.cp.settings.tenant_id
    }
}

/// Answers every ARM request (`/subscriptions/...`, `/providers/...`).
pub(crate) async fn handle(
    State(cp): State<Arc<ControlPlane>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut resp = {
        let span = tracing::info_span!("arm", %method, path = %uri.path(), request_id = %request_id);
        let _enter = span.enter();
        let lower = uri.path().to_ascii_lowercase();
        match lower.find(operations::SEGMENT) {
            // A poll of a long-running operation.
            Some(i) if method == Method::GET => match authenticate(&cp, &headers) {
                Ok(_) => cp.operations.poll(&uri.path()[i + operations::SEGMENT.len()..]),
                Err(f) => f.into_response(),
            },
            _ => match dispatch(&cp, &method, &uri, &headers, &body) {
                Ok(r) => r,
                Err(f) => {
                    tracing::info!(status = f.status.as_u16(), code = %f.error.error.code, "ARM request refused");
                    f.into_response()
                }
            },
        }
    };
    if cp.settings.async_operations && resp.status().is_success() && operations::is_async(&method, uri.path()) {
        resp = cp.operations.start(&cp.settings.base_url, &cp.settings.subscription_id, &method, resp).await;
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-ms-request-id", v.clone());
        resp.headers_mut().insert("x-ms-correlation-request-id", v);
    }
    resp
}

/// Checks the bearer token: issued by this emulator, for ARM, not expired.
pub(crate) fn authenticate(cp: &ControlPlane, headers: &HeaderMap) -> Result<String, ArmFailure> {
    let token = entra::bearer(headers).map_err(|r| match r {
        Rejection::Missing => ArmFailure::unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ),
        _ => ArmFailure::unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        ),
    })?;
    match entra::verify(cp, token, &[audience::ARM, audience::ARM_LEGACY]) {
        Ok(claims) => Ok(claims.oid),
        Err(Rejection::Expired { exp, now }) => Err(ArmFailure::unauthorized(
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                arm_time(OffsetDateTime::from_unix_timestamp(exp).unwrap_or(OffsetDateTime::UNIX_EPOCH)),
                arm_time(OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH)),
            ),
        )),
        Err(Rejection::WrongAudience(aud)) => Err(ArmFailure::unauthorized(
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
            ),
        )),
        Err(Rejection::WrongTenant(issuer)) => Err(ArmFailure::unauthorized(
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer '{issuer}'. It must match the tenant '{}' associated with this subscription. Please use the authority (URL) '{}' to get the token.",
                cp.settings.entra_issuer(),
                cp.settings.entra_issuer()
            ),
        )),
        Err(_) => Err(ArmFailure::unauthorized("InvalidAuthenticationToken", "The access token is invalid.")),
    }
}

/// Parses an ARM path (for [`crate::parsing`]).
pub(crate) fn parse_path(path: &str, method: &Method) -> Result<(), ArmFailure> {
    path::parse(path, method).map(drop)
}

/// The action a request performs (for [`crate::parsing`]).
pub(crate) fn action_of(method: &Method, path: &str) -> String {
    access::action_of(method, path)
}

/// Formats a time as ARM does in messages and `createdOn`.
pub(crate) fn arm_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn check_api_version(target: &Target, query: &[(String, String)]) -> Result<(), ArmFailure> {
    let Some((_, version)) = query.iter().find(|(k, _)| k.eq_ignore_ascii_case("api-version")) else {
        return Err(ArmFailure::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let (namespace, ty) = target.api_type();
    let accepted = catalog::api_versions(namespace, ty);
    if accepted.iter().any(|a| a.eq_ignore_ascii_case(version)) {
        return Ok(());
    }
    Err(ArmFailure::bad_request(
        "InvalidApiVersionParameter",
        format!("The api-version '{version}' is invalid. The supported versions are '{}'.", accepted.join(",")),
    ))
}

fn dispatch(
    cp: &ControlPlane,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ArmFailure> {
    let caller = authenticate(cp, headers)?;
    if cp.read(|s| s.directory.is_reader_principal(&caller)) {
        let action = access::action_of(method, uri.path());
        if !access::reader_allows(&action) {
            let scope = uri.path();
            tracing::info!(%caller, %action, "a read-only identity was refused");
            cp.record_refusal(format!("ARM {method} {scope}: {action} (AuthorizationFailed)"));
            return Err(ArmFailure::new(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                format!(
                    "The client '{caller}' with object id '{caller}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
                ),
            ));
        }
    }
    let query = Query::<Vec<(String, String)>>::try_from_uri(uri).map(|q| q.0).unwrap_or_default();
    let target = path::parse(uri.path(), method)?;
    if let Some(sub) = target.subscription()
        && !sub.eq_ignore_ascii_case(&cp.settings.subscription_id)
    {
        return Err(ArmFailure::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ));
    }
    check_api_version(&target, &query)?;
    let ctx = Ctx { cp, caller, query, now: cp.now() };
    let parse_body = || -> Result<Value, ArmFailure> {
        if body.is_empty() {
            return Err(ArmFailure::invalid_content("the request body is empty"));
        }
        serde_json::from_slice(body).map_err(ArmFailure::invalid_content)
    };
    match (method.clone(), target) {
        (Method::GET, Target::Subscriptions) => Ok(reply(StatusCode::OK, json!({"value": [subscription_body(&ctx)]}))),
        (Method::GET, Target::Subscription { .. }) => Ok(reply(StatusCode::OK, subscription_body(&ctx))),
        (Method::GET, Target::ResourceGroups { .. }) => Ok(cp.read(resource_groups::list)),
        (m, Target::ResourceGroup { id, name, .. }) => match m {
            Method::GET => cp.read(|s| resource_groups::get(s, &id, &name)),
            Method::HEAD => Ok(cp.read(|s| resource_groups::exists(s, &id))),
            Method::PUT => {
                let body = parse_body()?;
                cp.mutate(|s| resource_groups::put(&ctx, s, &id, &name, body))
            }
            Method::PATCH => {
                let body = parse_body()?;
                cp.mutate(|s| resource_groups::patch(&ctx, s, &id, &name, body))
            }
            Method::DELETE => Ok(cp.mutate(|s| resource_groups::delete(&ctx, s, &id))),
            m => Err(ArmFailure::method_not_allowed(m.as_str(), "resourceGroups")),
        },
        (Method::GET, Target::Item { id, scope, spec, .. }) => cp.read(|s| get_item(&ctx, s, &id, &scope, spec)),
        (Method::PUT, Target::Item { id, scope, spec, .. }) => {
            let body = parse_body()?;
            cp.mutate(|s| put_item(&ctx, s, &id, &scope, spec, body, false))
        }
        (Method::PATCH, Target::Item { id, scope, spec, .. }) => {
            let body = parse_body()?;
            cp.mutate(|s| put_item(&ctx, s, &id, &scope, spec, body, true))
        }
        (Method::DELETE, Target::Item { id, scope, spec, .. }) => {
            cp.mutate(|s| delete_item(&ctx, s, &id, &scope, spec))
        }
        (Method::GET, Target::Collection { scope, spec, .. }) => cp.read(|s| list(&ctx, s, &scope, spec)),
        (Method::POST, Target::Action { id, spec, action, .. }) => {
            let body = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(body).map_err(ArmFailure::invalid_content)?
            };
            cp.mutate(|s| action_item(&ctx, s, &id, spec, &action, body))
        }
        (m, Target::Item { spec, .. } | Target::Collection { spec, .. } | Target::Action { spec, .. }) => {
            Err(ArmFailure::method_not_allowed(m.as_str(), spec.name))
        }
        (m, _) => Err(ArmFailure::method_not_allowed(m.as_str(), uri.path())),
    }
}

fn subscription_body(ctx: &Ctx<'_>) -> Value {
    json!({
        "id": format!("/subscriptions/{}", ctx.subscription()),
        "subscriptionId": ctx.subscription(),
        "tenantId": ctx.tenant(),
        "displayName": "pullproof emulator",
        "state": "Enabled",
        "authorizationSource": "RoleBased",
    })
}

/// A JSON answer.
pub(crate) fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A body-less answer.
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// A collection answer: `{"value": [...]}`.
pub(crate) fn collection(values: Vec<Value>) -> Response {
    reply(StatusCode::OK, json!({ "value": values }))
}

/// The resource group id of `id`, when it has one.
pub(crate) fn group_of(id: &str) -> Option<(String, String)> {
    let rid = ResourceId::parse(id).ok()?;
    let rg = rid.resource_group()?.to_string();
    Some((format!("/subscriptions/{}/resourceGroups/{rg}", rid.subscription()?), rg))
}

/// `(group id, group name)` when `scope` is exactly a resource group.
pub(crate) fn scope_group(scope: &str) -> Option<(String, String)> {
    let s: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    (s.len() == 4 && s[0].eq_ignore_ascii_case("subscriptions") && s[2].eq_ignore_ascii_case("resourceGroups"))
        .then(|| (format!("/subscriptions/{}/resourceGroups/{}", s[1], s[3]), s[3].to_string()))
}

/// Fails with `ResourceGroupNotFound` when `id`'s group does not exist.
pub(crate) fn require_group(state: &EmulatorState, id: &str) -> Result<(), ArmFailure> {
    match group_of(id) {
        Some((gid, rg)) if !state.store.contains(&gid) => Err(ArmFailure::resource_group_not_found(&rg)),
        _ => Ok(()),
    }
}

/// The parent id of a child resource id.
pub(crate) fn parent_id(id: &str) -> String {
    ResourceId::parse(id).ok().and_then(|r| r.parent()).map(|p| p.as_str().to_string()).unwrap_or_default()
}

/// The last segment of an id.
pub(crate) fn last_segment(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or_default()
}

/// Fails with `InvalidRequestContent` unless `value` deserializes as `T`.
pub(crate) fn check_shape<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ArmFailure> {
    serde_json::from_value(value.clone()).map_err(ArmFailure::invalid_content)
}

/// The `properties` object of a body (created if absent).
pub(crate) fn props(value: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !value.get("properties").is_some_and(Value::is_object) {
        value["properties"] = json!({});
    }
    value["properties"].as_object_mut().expect("just made an object")
}

/// Sets `key` in `map` unless it is already there (and not null).
pub(crate) fn default_field(map: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

fn new_etag(style: Etag) -> Option<String> {
    let g = uuid::Uuid::new_v4();
    match style {
        Etag::None => None,
        Etag::Weak => Some(format!("W/\"{g}\"")),
        Etag::Plain => Some(g.to_string()),
    }
}

/// Normalises a location as ARM does (`West Europe` -> `westeurope`).
pub(crate) fn normalise_location(l: &str) -> String {
    l.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

/// Fills the envelope: `id`, `name`, `type`, `location`, `properties`, `provisioningState`, `etag`.
fn envelope(spec: &TypeSpec, id: &str, mut body: Value, existing: Option<&Value>) -> Result<Value, ArmFailure> {
    let Some(obj) = body.as_object_mut() else {
        return Err(ArmFailure::invalid_content("the request body must be a JSON object"));
    };
    let mut name = last_segment(id).to_string();
    if spec.name == types::A_RECORD_SET {
        name = name.to_ascii_lowercase();
    }
    obj.insert("id".into(), json!(id));
    obj.insert("name".into(), json!(name));
    obj.insert("type".into(), json!(spec.name));
    match spec.location {
        Location::Required => {
            let location = obj
                .get("location")
                .and_then(Value::as_str)
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .or_else(|| existing.and_then(|e| e.get("location")).and_then(Value::as_str).map(str::to_string))
                .ok_or_else(|| {
                    ArmFailure::bad_request(
                        "LocationRequired",
                        "The location property is required for this definition.",
                    )
                })?;
            obj.insert("location".into(), json!(normalise_location(&location)));
        }
        Location::Global => {
            obj.insert("location".into(), json!("global"));
        }
        Location::Absent => {
            obj.remove("location");
        }
    }
    if matches!(spec.placement, Placement::Embedded(_)) {
        obj.remove("tags");
    } else if obj.get("tags").is_some_and(|t| !t.is_object() && !t.is_null()) {
        return Err(ArmFailure::invalid_content("`tags` must be an object"));
    }
    if obj.get("properties").is_some_and(|p| !p.is_object() && !p.is_null()) {
        return Err(ArmFailure::invalid_content("`properties` must be an object"));
    }
    obj.remove("etag");
    if let Some(e) = new_etag(spec.etag) {
        obj.insert("etag".into(), json!(e));
    }
    if spec.provisioning {
        props(&mut body).insert("provisioningState".into(), json!("Succeeded"));
    } else {
        props(&mut body);
    }
    Ok(body)
}

/// RFC 7396 JSON merge patch (objects merge, `null` removes, anything else replaces).
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let Some(t) = target.as_object_mut() else { return };
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn get_item(
    ctx: &Ctx<'_>,
    state: &EmulatorState,
    id: &str,
    scope: &str,
    spec: &'static TypeSpec,
) -> Result<Response, ArmFailure> {
    if spec.placement == Placement::Extension {
        return authorization::get(ctx, state, id, scope, spec);
    }
    require_group(state, id)?;
    let found = match spec.placement {
        Placement::Embedded(array) => {
            let parent = parent_id(id);
            let p = state.store.get(&parent).ok_or_else(|| ArmFailure::resource_not_found(&parent))?;
            children(p, array).iter().find(|c| child_named(c, last_segment(id))).cloned()
        }
        _ => state.store.get(id).cloned(),
    };
    found.map(|v| reply(StatusCode::OK, v)).ok_or_else(|| missing(spec, id))
}

/// The 404 for a resource that does not exist. ARM answers `ResourceNotFound` for tracked
/// resources; Microsoft.Network answers its own `NotFound` ("Resource {id} not found.") for
/// the child resources it embeds (subnets, peerings, rules, routes).
fn missing(spec: &TypeSpec, id: &str) -> ArmFailure {
    match spec.placement {
        Placement::Embedded(_) if spec.namespace().eq_ignore_ascii_case("Microsoft.Network") => {
            ArmFailure::network_not_found(id)
        }
        _ => ArmFailure::resource_not_found(id),
    }
}

fn child_named(child: &Value, name: &str) -> bool {
    child.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name))
}

fn put_item(
    ctx: &Ctx<'_>,
    state: &mut EmulatorState,
    id: &str,
    scope: &str,
    spec: &'static TypeSpec,
    body: Value,
    patch: bool,
) -> Result<Response, ArmFailure> {
    if spec.name == catalog::REGISTRY_PE_CONNECTION && !patch {
        require_group(state, id)?;
        return container_registry::put_connection(state, id, body);
    }
    if spec.read_only {
        return Err(ArmFailure::method_not_allowed(if patch { "PATCH" } else { "PUT" }, spec.name));
    }
    if spec.placement == Placement::Extension {
        return authorization::put(ctx, state, id, scope, spec, body);
    }
    require_group(state, id)?;
    let existing = match spec.placement {
        Placement::Embedded(array) => {
            let parent = parent_id(id);
            let p = state.store.get(&parent).ok_or_else(|| ArmFailure::parent_not_found(last_segment(&parent)))?;
            children(p, array).iter().find(|c| child_named(c, last_segment(id))).cloned()
        }
        Placement::Child => {
            let parent = parent_id(id);
            if !state.store.contains(&parent) {
                return Err(ArmFailure::parent_not_found(last_segment(&parent)));
            }
            state.store.get(id).cloned()
        }
        _ => state.store.get(id).cloned(),
    };
    let body = if patch {
        let mut merged = existing.clone().ok_or_else(|| missing(spec, id))?;
        merge_patch(&mut merged, &body);
        merged
    } else {
        body
    };
    // ARM keeps the casing of the id that created the resource.
    let canonical =
        existing.as_ref().map(|e| id_of(e).to_string()).filter(|i| !i.is_empty()).unwrap_or_else(|| id.to_string());
    let mut value = envelope(spec, &canonical, body, existing.as_ref())?;
    prepare(ctx, state, spec, &mut value, existing.as_ref())?;
    match spec.placement {
        Placement::Embedded(array) => {
            let parent = parent_id(id);
            if let Some(p) = state.store.get_mut(&parent) {
                upsert_child(p, array, value.clone());
            }
        }
        _ => state.store.insert(value.clone()),
    }
    after_put(ctx, state, spec, &canonical, existing.is_none())?;
    state.commit();
    let stored = match spec.placement {
        Placement::Embedded(array) => state
            .store
            .get(&parent_id(id))
            .and_then(|p| children(p, array).iter().find(|c| child_named(c, last_segment(id))).cloned()),
        _ => state.store.get(id).cloned(),
    }
    .unwrap_or(value);
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    tracing::info!(id = %canonical, created = existing.is_none(), "resource written");
    Ok(reply(status, stored))
}

fn delete_item(
    ctx: &Ctx<'_>,
    state: &mut EmulatorState,
    id: &str,
    scope: &str,
    spec: &'static TypeSpec,
) -> Result<Response, ArmFailure> {
    if spec.read_only {
        return Err(ArmFailure::method_not_allowed("DELETE", spec.name));
    }
    if spec.placement == Placement::Extension {
        return authorization::delete(ctx, state, id, scope, spec);
    }
    require_group(state, id)?;
    match spec.placement {
        Placement::Embedded(array) => {
            let parent = parent_id(id);
            let Some(p) = state.store.get(&parent) else { return Ok(empty(StatusCode::NO_CONTENT)) };
            let Some(child) = children(p, array).iter().find(|c| child_named(c, last_segment(id))).cloned() else {
                return Ok(empty(StatusCode::NO_CONTENT));
            };
            before_delete(ctx, state, spec, &child)?;
            if let Some(list) = state
                .store
                .get_mut(&parent)
                .and_then(|p| p.pointer_mut(&format!("/properties/{array}")))
                .and_then(Value::as_array_mut)
            {
                list.retain(|c| !child_named(c, last_segment(id)));
            }
            after_delete(ctx, state, spec, &child);
        }
        _ => {
            let Some(value) = state.store.get(id).cloned() else { return Ok(empty(StatusCode::NO_CONTENT)) };
            before_delete(ctx, state, spec, &value)?;
            for removed in state.store.remove_within(id) {
                if let Some(s) = catalog::lookup(crate::state::store::type_of(&removed)) {
                    after_delete(ctx, state, s, &removed);
                }
            }
        }
    }
    tracing::info!(%id, "resource deleted");
    Ok(empty(StatusCode::OK))
}

fn list(ctx: &Ctx<'_>, state: &EmulatorState, scope: &str, spec: &'static TypeSpec) -> Result<Response, ArmFailure> {
    match spec.placement {
        Placement::Extension => authorization::list(ctx, state, scope, spec),
        Placement::Embedded(array) => {
            require_group(state, scope)?;
            let p = state.store.get(scope).ok_or_else(|| ArmFailure::resource_not_found(scope))?;
            Ok(collection(children(p, array).to_vec()))
        }
        Placement::Child => {
            require_group(state, scope)?;
            if !state.store.contains(scope) {
                return Err(ArmFailure::resource_not_found(scope));
            }
            let values = state
                .store
                .of_type(spec.name)
                .filter(|v| azure_model::id::same_id(&parent_id(id_of(v)), scope))
                .cloned()
                .collect();
            Ok(collection(values))
        }
        Placement::ResourceGroup => {
            let in_group = scope_group(scope);
            if let Some((gid, rg)) = &in_group
                && !state.store.contains(gid)
            {
                return Err(ArmFailure::resource_group_not_found(rg));
            }
            let values = state
                .store
                .of_type(spec.name)
                .filter(|v| match &in_group {
                    Some((gid, _)) => group_of(id_of(v)).is_some_and(|(g, _)| g.eq_ignore_ascii_case(gid)),
                    None => ResourceId::parse(id_of(v)).is_ok_and(|r| r.is_within(scope)),
                })
                .cloned()
                .collect();
            Ok(collection(values))
        }
    }
}

fn action_item(
    ctx: &Ctx<'_>,
    state: &mut EmulatorState,
    id: &str,
    spec: &'static TypeSpec,
    action: &str,
    body: Value,
) -> Result<Response, ArmFailure> {
    require_group(state, id)?;
    if !state.store.contains(id) {
        return Err(ArmFailure::resource_not_found(id));
    }
    let canonical = state.store.get(id).map(|v| id_of(v).to_string()).unwrap_or_else(|| id.to_string());
    match (spec.name, action.to_ascii_lowercase().as_str()) {
        (types::MANAGED_CLUSTER, "resetserviceprincipalprofile") => {
            container_service::reset_service_principal(ctx, state, &canonical, body)
        }
        (types::REGISTRY, "listcredentials") => container_registry::list_credentials(state, &canonical),
        (types::REGISTRY, "regeneratecredential") => container_registry::regenerate_credential(state, &canonical, body),
        _ => Err(ArmFailure::no_route(&format!("{id}/{action}"))),
    }
}

fn prepare(
    ctx: &Ctx<'_>,
    state: &mut EmulatorState,
    spec: &'static TypeSpec,
    value: &mut Value,
    existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    match spec.name {
        types::MANAGED_CLUSTER => container_service::prepare(ctx, state, value, existing),
        types::REGISTRY => container_registry::prepare(ctx, value, existing),
        types::VIRTUAL_MACHINE_SCALE_SET => compute::prepare_scale_set(ctx, state, value, existing),
        catalog::USER_ASSIGNED_IDENTITY => compute::prepare_identity(ctx, value, existing),
        types::PRIVATE_DNS_ZONE => private_dns::prepare_zone(value),
        types::VIRTUAL_NETWORK_LINK => private_dns::prepare_link(ctx, state, value, existing),
        types::A_RECORD_SET => private_dns::prepare_record_set(value),
        _ => network::prepare(ctx, state, spec, value, existing),
    }
}

fn after_put(
    ctx: &Ctx<'_>,
    state: &mut EmulatorState,
    spec: &'static TypeSpec,
    id: &str,
    created: bool,
) -> Result<(), ArmFailure> {
    match spec.name {
        types::MANAGED_CLUSTER => container_service::reconcile_node_pools(ctx, state, id),
        types::REGISTRY => {
            state.ensure_admin_passwords(id);
            Ok(())
        }
        types::VIRTUAL_NETWORK if created => network::create_embedded_peerings(ctx, state, id),
        _ => Ok(()),
    }
}

fn before_delete(
    ctx: &Ctx<'_>,
    state: &EmulatorState,
    spec: &'static TypeSpec,
    value: &Value,
) -> Result<(), ArmFailure> {
    match spec.name {
        types::SUBNET => network::check_subnet_unused(ctx, state, value),
        _ => Ok(()),
    }
}

fn after_delete(ctx: &Ctx<'_>, state: &mut EmulatorState, spec: &'static TypeSpec, removed: &Value) {
    match spec.name {
        types::PEERING => network::peering_deleted(ctx, state, removed),
        types::VIRTUAL_NETWORK => network::vnet_deleted(ctx, state, removed),
        types::MANAGED_CLUSTER => {
            state.cluster_secrets.remove(&id_of(removed).to_ascii_lowercase());
        }
        _ => {}
    }
}

/// Runs a PUT from inside the emulator (AKS creating node resources) through the same
/// pipeline as HTTP requests, returning the stored body.
pub(crate) fn put_nested(ctx: &Ctx<'_>, state: &mut EmulatorState, id: &str, body: Value) -> Result<Value, ArmFailure> {
    match path::parse(id, &Method::PUT)? {
        Target::ResourceGroup { id, name, .. } => {
            resource_groups::put(ctx, state, &id, &name, body)?;
        }
        Target::Item { id, scope, spec, .. } => {
            put_item(ctx, state, &id, &scope, spec, body, false)?;
        }
        _ => return Err(ArmFailure::no_route(id)),
    }
    lookup_any(state, id).ok_or_else(|| ArmFailure::resource_not_found(id))
}

/// Runs a PUT through the same pipeline as HTTP requests (for in-process callers).
pub(crate) fn put_in_process(cp: &ControlPlane, id: &str, body: Value) -> Result<Value, azure_model::ArmError> {
    let ctx = Ctx { cp, caller: "pullproof-emulator".into(), query: Vec::new(), now: cp.now() };
    cp.mutate(|s| put_nested(&ctx, s, id, body)).map_err(|f| *f.error)
}

/// Runs a DELETE through the same pipeline as HTTP requests (for in-process callers).
pub(crate) fn delete_in_process(cp: &ControlPlane, id: &str) -> Result<(), azure_model::ArmError> {
    let target = path::parse(id, &Method::DELETE).map_err(|f| *f.error)?;
    let ctx = Ctx { cp, caller: "pullproof-emulator".into(), query: Vec::new(), now: cp.now() };
    match target {
        Target::ResourceGroup { id, .. } => {
            cp.mutate(|s| resource_groups::delete(&ctx, s, &id));
            Ok(())
        }
        Target::Item { id, scope, spec, .. } => {
            cp.mutate(|s| delete_item(&ctx, s, &id, &scope, spec)).map(|_| ()).map_err(|f| *f.error)
        }
        _ => Err(azure_model::ArmError::new("InvalidResourceId", format!("`{id}` is not a resource id"))),
    }
}

/// A stored resource or embedded child by id.
pub(crate) fn lookup_any(state: &EmulatorState, id: &str) -> Option<Value> {
    if let Some(v) = state.store.get(id) {
        return Some(v.clone());
    }
    let parent = state.store.get(&parent_id(id))?;
    let ty = ResourceId::parse(id).ok()?.resource_type();
    match catalog::lookup(&ty)?.placement {
        Placement::Embedded(array) => {
            children(parent, array).iter().find(|c| child_named(c, last_segment(id))).cloned()
        }
        _ => None,
    }
}
