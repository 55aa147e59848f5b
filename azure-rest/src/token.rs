//! Where bearer tokens come from.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::RestError;

/// A bearer token and when it stops being usable.
#[derive(Clone)]
pub struct AccessToken {
    /// The token. Never logged: `Debug` hides it.
    pub token: String,
    /// When to fetch a new one.
    pub expires_at: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("token", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

/// A boxed future, for object-safe token sources.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that hands out bearer tokens for a scope.
pub trait TokenSource: Send + Sync {
    /// A token for `scope` (e.g. [`crate::ARM_SCOPE`]).
    fn token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, RestError>>;
}

/// A fixed token (tests, or a token obtained elsewhere such as `az account get-access-token`).
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    fn token<'a>(&'a self, _scope: &'a str) -> BoxFuture<'a, Result<AccessToken, RestError>> {
        let t = AccessToken { token: self.0.clone(), expires_at: Instant::now() + Duration::from_secs(3600) };
        Box::pin(async move { Ok(t) })
    }
}

/// OAuth 2.0 client credentials against an Entra-style token endpoint
/// (`{authority}/{tenant}/oauth2/v2.0/token`), cached per scope.
pub struct ClientCredentials {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
    cache: Mutex<Vec<(String, AccessToken)>>,
}

impl ClientCredentials {
    /// Credentials for `client_id` at `token_url`. `http` should trust the endpoint's CA.
    pub fn new(
        http: reqwest::Client,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache: Mutex::new(Vec::new()),
        })
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenSource for ClientCredentials {
    fn token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, RestError>> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            let now = Instant::now();
            if let Some((_, t)) = cache.iter().find(|(s, t)| s == scope && t.expires_at > now) {
                return Ok(t.clone());
            }
            let err = |reason: String| RestError::Token { scope: scope.to_string(), reason };
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("scope", scope),
            ];
            let resp = self.http.post(&self.token_url).form(&form).send().await.map_err(|e| err(e.to_string()))?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| err(e.to_string()))?;
            if !status.is_success() {
                let detail = serde_json::from_str::<TokenError>(&body)
                    .map(|e| format!("{}: {}", e.error, e.error_description.lines().next().unwrap_or_default()))
                    .unwrap_or_else(|_| format!("HTTP {status}"));
                return Err(err(detail));
            }
            let answer: TokenAnswer =
                serde_json::from_str(&body).map_err(|e| err(format!("unexpected token answer: {e}")))?;
            let secs = answer
                .expires_in
                .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
                .unwrap_or(3600);
            // Renew five minutes early (or halfway, for short-lived tokens).
            let life = Duration::from_secs(secs.saturating_sub(300).max(secs / 2));
            let token = AccessToken { token: answer.access_token, expires_at: now + life };
            cache.retain(|(s, _)| s != scope);
            cache.push((scope.to_string(), token.clone()));
            Ok(token)
        })
    }
}
