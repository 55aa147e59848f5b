//! The Instance Metadata Service's managed-identity token endpoint
//! (`GET /metadata/identity/oauth2/token`).
//!
//! The caller is a node, recognised by its source address (registered with
//! [`crate::RunningEmulator::register_node`]). IMDS answers only for identities attached to that
//! node's scale set, exactly like Azure: otherwise `400 Identity not found`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::Duration;

use crate::control_plane::ControlPlane;
use crate::entra::{self, Principal};
use crate::server::PeerAddr;

/// Managed identity tokens live about a day.
const LIFETIME_SECONDS: i64 = 86399;

fn failure(description: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": description})))
        .into_response()
}

/// One identity attached to a scale set.
#[derive(Debug, Clone)]
struct Attached {
    resource_id: Option<String>,
    client_id: String,
    principal_id: String,
}

/// `GET /metadata/identity/oauth2/token?api-version=...&resource=...[&client_id|object_id|mi_res_id]`.
pub(crate) async fn token(
    State(cp): State<Arc<ControlPlane>>,
    axum::Extension(PeerAddr(peer)): axum::Extension<PeerAddr>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let ip = peer.ip().to_canonical();
    let span = tracing::info_span!("imds", node = %ip);
    let _enter = span.enter();
    let metadata =
        headers.get("metadata").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !metadata {
        return failure("Required metadata header not specified");
    }
    let param = |name: &str| query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    if param("api-version").is_none() {
        return failure("Required query variable 'api-version' is missing");
    }
    let Some(resource) = param("resource") else {
        return failure("Required audience parameter not specified");
    };
    let Some(attached) = cp.read(|s| {
        let vmss_id = s.nodes.get(&ip)?;
        let vmss = s.store.get(vmss_id)?;
        Some(attached_identities(s, vmss))
    }) else {
        tracing::warn!("IMDS call from an address that is not a registered node");
        return failure("Identity not found");
    };
    let chosen: Vec<&Attached> = match (
        param("client_id"),
        param("object_id").or_else(|| param("principal_id")),
        param("mi_res_id").or_else(|| param("msi_res_id")),
    ) {
        (Some(c), _, _) => attached.iter().filter(|a| a.client_id.eq_ignore_ascii_case(&c)).collect(),
        (_, Some(o), _) => attached.iter().filter(|a| a.principal_id.eq_ignore_ascii_case(&o)).collect(),
        (_, _, Some(r)) => attached
            .iter()
            .filter(|a| a.resource_id.as_deref().is_some_and(|id| azure_model::id::same_id(id, &r)))
            .collect(),
        _ => {
            let system: Vec<&Attached> = attached.iter().filter(|a| a.resource_id.is_none()).collect();
            if !system.is_empty() {
                system
            } else if attached.len() > 1 {
                return failure(
                    "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
                );
            } else {
                attached.iter().collect()
            }
        }
    };
    let Some(identity) = chosen.first() else {
        tracing::info!("identity not attached to the node's scale set");
        return failure("Identity not found");
    };
    let principal = Principal {
        object_id: identity.principal_id.clone(),
        app_id: identity.client_id.clone(),
        managed_identity: identity.resource_id.clone(),
    };
    let issued = entra::issue(&cp, &principal, &resource, Duration::seconds(LIFETIME_SECONDS));
    tracing::info!(client_id = %identity.client_id, %resource, "managed identity token issued");
    Json(json!({
        "access_token": issued.token,
        "refresh_token": "",
        "client_id": identity.client_id,
        "expires_in": LIFETIME_SECONDS.to_string(),
        "expires_on": issued.expires_on.unix_timestamp().to_string(),
        "ext_expires_in": LIFETIME_SECONDS.to_string(),
        "not_before": issued.issued_at.unix_timestamp().to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The identities of a scale set: its system-assigned one and the user-assigned ones (ids read
/// from the identity resources when they still exist).
fn attached_identities(state: &crate::state::State, vmss: &Value) -> Vec<Attached> {
    let mut out = Vec::new();
    let kind = vmss.pointer("/identity/type").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    if kind.contains("systemassigned")
        && let Some(p) = vmss.pointer("/identity/principalId").and_then(Value::as_str)
    {
        out.push(Attached { resource_id: None, client_id: p.to_string(), principal_id: p.to_string() });
    }
    if let Some(users) = vmss.pointer("/identity/userAssignedIdentities").and_then(Value::as_object) {
        for (id, v) in users {
            let from = |f: &str| {
                state
                    .store
                    .get(id)
                    .and_then(|r| r.pointer(&format!("/properties/{f}")))
                    .or_else(|| v.get(f))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            out.push(Attached {
                resource_id: Some(id.clone()),
                client_id: from("clientId"),
                principal_id: from("principalId"),
            });
        }
    }
    out
}
