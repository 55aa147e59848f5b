//! ARM's asynchronous operation protocol, for clients that must handle it.
//!
//! With [`EmulatorConfig::async_operations`](crate::EmulatorConfig::async_operations), writes
//! that Azure carries out asynchronously answer as Azure does: a `PUT`/`PATCH` keeps its status
//! and body and adds `Azure-AsyncOperation`; a `DELETE` or the `resetServicePrincipalProfile`
//! action answers `202 Accepted` with `Azure-AsyncOperation` and `Location`. The operation reads
//! `InProgress` once, then `Succeeded`; the `Location` answers the action's result (or `204`).
//! The change itself is made at once (reads during the operation see it), which clients cannot
//! tell apart from a fast operation. Every answer carries `Retry-After: 0`.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The path segment under which operations are served:
/// `/subscriptions/SUB/providers/Microsoft.Emulator/operations/ID[/result]`.
pub(crate) const SEGMENT: &str = "/providers/microsoft.emulator/operations/";

/// One operation: how many more polls read `InProgress`, and the result to answer at its end.
#[derive(Debug)]
struct Operation {
    polls_left: u32,
    status: StatusCode,
    body: Vec<u8>,
}

/// The operations in flight.
#[derive(Debug, Default)]
pub(crate) struct Operations(Mutex<HashMap<String, Operation>>);

/// Whether Azure runs this write asynchronously (the resource types pullproof touches that ARM
/// answers with `Azure-AsyncOperation`): network resources, clusters, registries, scale sets,
/// and the cluster's service principal reset. Role assignments and resource groups answer at
/// once; `listCredentials` and `regenerateCredential` answer their result directly.
pub(crate) fn is_async(method: &Method, path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    if *method == Method::POST {
        return p.ends_with("/resetserviceprincipalprofile");
    }
    matches!(*method, Method::PUT | Method::PATCH | Method::DELETE)
        && [
            "/providers/microsoft.network/",
            "/providers/microsoft.containerservice/",
            "/providers/microsoft.containerregistry/",
            "/providers/microsoft.compute/",
        ]
        .iter()
        .any(|t| p.contains(t))
}

fn header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

impl Operations {
    /// Turns a finished write's answer into the start of an operation.
    pub(crate) async fn start(&self, base: &str, subscription: &str, method: &Method, resp: Response) -> Response {
        let status = resp.status();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await.map(|b| b.to_vec()).unwrap_or_default();
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(mut ops) = self.0.lock() {
            ops.insert(id.clone(), Operation { polls_left: 1, status, body: body.clone() });
        }
        let url = format!("{base}/subscriptions/{subscription}/providers/Microsoft.Emulator/operations/{id}");
        let mut out = if matches!(*method, Method::PUT | Method::PATCH) {
            Response::from_parts(parts, axum::body::Body::from(body))
        } else {
            let mut r = StatusCode::ACCEPTED.into_response();
            header(&mut r, "location", &format!("{url}/result?api-version=2024-01-01"));
            r
        };
        header(&mut out, "azure-asyncoperation", &format!("{url}?api-version=2024-01-01"));
        header(&mut out, "retry-after", "0");
        out
    }

    /// Answers a poll of `rest` (`ID` or `ID/result`).
    pub(crate) fn poll(&self, rest: &str) -> Response {
        let (id, result) = match rest.strip_suffix("/result") {
            Some(id) => (id, true),
            None => (rest, false),
        };
        let Ok(mut ops) = self.0.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let Some(op) = ops.get_mut(&id.to_ascii_lowercase()) else {
            let body = json!({"error": {"code": "NotFound", "message": format!("Operation '{id}' not found.")}});
            return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
        };
        let running = op.polls_left > 0;
        if running {
            op.polls_left -= 1;
        }
        let mut resp = match (result, running) {
            (false, true) => axum::Json(json!({"status": "InProgress"})).into_response(),
            (false, false) => axum::Json(json!({"status": "Succeeded"})).into_response(),
            (true, true) => StatusCode::ACCEPTED.into_response(),
            (true, false)
                if op.body.is_empty() || serde_json::from_slice::<Value>(&op.body).is_ok_and(|v| v.is_null()) =>
            {
                StatusCode::NO_CONTENT.into_response()
            }
            (true, false) => {
                let mut r = Response::new(axum::body::Body::from(op.body.clone()));
                *r.status_mut() = if op.status == StatusCode::ACCEPTED { StatusCode::OK } else { op.status };
                header(&mut r, "content-type", "application/json; charset=utf-8");
                r
            }
        };
        header(&mut resp, "retry-after", "0");
        resp
    }
}
