//! ARM's error answers: a status, the `{"error": {"code", "message"}}` envelope, and for 401s the
//! `WWW-Authenticate` challenge.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use azure_model::ArmError;

/// An ARM error answer.
#[derive(Debug, Clone)]
pub(crate) struct ArmFailure {
    pub status: StatusCode,
    pub error: Box<ArmError>,
    challenge: Option<Box<str>>,
}

impl ArmFailure {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, error: Box::new(ArmError::new(code, message)), challenge: None }
    }

    /// A 401 with ARM's bearer challenge.
    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let challenge = format!(
            "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", error_description=\"{}\"",
            message.replace('"', "'")
        );
        Self { challenge: Some(challenge.into()), ..Self::new(StatusCode::UNAUTHORIZED, code, message) }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid_content(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{detail}'."),
        )
    }

    pub fn resource_not_found(id: &str) -> Self {
        let parsed = azure_model::ResourceId::parse(id).ok();
        let ty = parsed.as_ref().map(|p| p.resource_type()).unwrap_or_default();
        let name = parsed.as_ref().map(|p| p.name().to_string()).unwrap_or_default();
        let rg = parsed.as_ref().and_then(|p| p.resource_group().map(str::to_string)).unwrap_or_default();
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{ty}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// Microsoft.Network's own 404 (for the child resources it serves itself, e.g. a subnet):
    /// `{"code": "NotFound", "message": "Resource {id} not found.", "details": []}`.
    pub fn network_not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", format!("Resource {id} not found."))
    }

    pub fn resource_group_not_found(rg: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceGroupNotFound", format!("Resource group '{rg}' could not be found."))
    }

    pub fn parent_not_found(parent: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ParentResourceNotFound",
            format!("Can not perform requested operation on nested resource. Parent resource '{parent}' not found."),
        )
    }

    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoRegisteredProviderFound",
            format!("No registered resource provider found for the request path '{path}'."),
        )
    }

    pub fn method_not_allowed(method: &str, what: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The method '{method}' is not allowed on '{what}'."),
        )
    }
}

impl IntoResponse for ArmFailure {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(*self.error)).into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}
