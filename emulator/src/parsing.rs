//! The emulator's request parsers, for fuzzing and property tests: each takes what a client
//! controls (a path, a query, a header, a form) and must answer every input without panicking.

/// Parses an ARM request path for `method` (`GET`, `PUT`, ...); `Ok(())` when it names
/// something ARM serves, `Err` with ARM's error code otherwise.
pub fn arm_path(path: &str, method: &str) -> Result<(), String> {
    let method = axum::http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    crate::arm::parse_path(path, &method).map(drop).map_err(|f| f.error.error.code.clone())
}

/// The action ARM authorisation sees for a request (`Microsoft.Network/routeTables/write`).
pub fn arm_action(path: &str, method: &str) -> Option<String> {
    let method = axum::http::Method::from_bytes(method.as_bytes()).ok()?;
    Some(crate::arm::action_of(&method, path))
}

/// Parses ACR token `scope` values (`repository:team/app:pull,push`): how many accesses.
pub fn acr_scopes(values: &[&str]) -> usize {
    crate::acr_access::parse_scopes(values.iter().copied()).len()
}

/// Parses an `Authorization` header value as a bearer token.
pub fn bearer(value: &str) -> Option<String> {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::AUTHORIZATION, axum::http::HeaderValue::from_str(value).ok()?);
    crate::entra::bearer(&headers).ok().map(str::to_string)
}

/// Reads a JWT's claims without verifying them (what a refresh token's re-signing reads).
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    crate::jwt::unverified_claims(token)
}
