//! Where Azure tokens come from: adapters from `azure_identity` credentials to
//! [`azure_rest::TokenSource`], the chain an operator expects (environment service principal,
//! workload identity, managed identity, Azure CLI), and explicit client credentials for
//! pullproof's emulator or any Entra-style token endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_rest::{AccessToken, RestError, TokenSource};
use tokio::sync::Mutex;

/// A boxed future (the shape [`TokenSource`] returns).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// How pulldoctor authenticates to ARM and Graph.
#[derive(Clone, Default)]
pub enum AzureAuth {
    /// The `azure_identity` chain: environment service principal (`AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), workload identity (`AZURE_FEDERATED_TOKEN_FILE`),
    /// managed identity, Azure CLI (`az login`).
    #[default]
    Chain,
    /// OAuth 2.0 client credentials at an explicit token endpoint (the emulator's
    /// `https://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token`, or Entra's).
    ClientCredentials {
        /// The token endpoint.
        token_url: String,
        /// The application (client) id.
        client_id: String,
        /// The secret (never printed: `Debug` hides it).
        client_secret: String,
    },
    /// A bearer token obtained elsewhere (`az account get-access-token`), used for every scope.
    Token(String),
}

impl fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureAuth::Chain => f.write_str("Chain"),
            AzureAuth::ClientCredentials { token_url, client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            AzureAuth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

impl AzureAuth {
    /// Builds the token source. `http` must trust the token endpoint's CA (client credentials).
    pub fn token_source(&self, http: reqwest::Client) -> Arc<dyn TokenSource> {
        match self {
            AzureAuth::Chain => Arc::new(ChainedCredential::default_chain()),
            AzureAuth::ClientCredentials { token_url, client_id, client_secret } => {
                azure_rest::ClientCredentials::new(http, token_url.clone(), client_id.clone(), client_secret.clone())
            }
            AzureAuth::Token(t) => Arc::new(azure_rest::StaticToken(t.clone())),
        }
    }
}

/// An `azure_identity` credential as a [`TokenSource`].
pub struct IdentityTokenSource {
    name: &'static str,
    credential: Arc<dyn TokenCredential>,
}

impl IdentityTokenSource {
    /// Wraps `credential`; `name` says which one it is in errors.
    pub fn new(name: &'static str, credential: Arc<dyn TokenCredential>) -> Self {
        Self { name, credential }
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, String> {
        let t = self.credential.get_token(&[scope], None).await.map_err(|e| format!("{}: {e}", self.name))?;
        let left = (t.expires_on - time::OffsetDateTime::now_utc()).whole_seconds().max(0) as u64;
        // Renew a little early; azure_identity caches tokens itself.
        let life = Duration::from_secs(left.saturating_sub(120).max(left / 2));
        Ok(AccessToken { token: t.token.secret().to_string(), expires_at: Instant::now() + life })
    }
}

impl TokenSource for IdentityTokenSource {
    fn token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, RestError>> {
        Box::pin(async move {
            self.fetch(scope).await.map_err(|reason| RestError::Token { scope: scope.to_string(), reason })
        })
    }
}

type Factory = fn() -> Result<Arc<dyn TokenCredential>, String>;

/// Tries credentials in order and sticks to the first that hands out a token.
pub struct ChainedCredential {
    links: Vec<(&'static str, Factory)>,
    chosen: Mutex<Option<Arc<IdentityTokenSource>>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_service_principal() -> Result<Arc<dyn TokenCredential>, String> {
    let (Some(tenant), Some(client), Some(secret)) =
        (env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID"), env("AZURE_CLIENT_SECRET"))
    else {
        return Err("AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not all set".into());
    };
    let c =
        azure_identity::ClientSecretCredential::new(&tenant, client, secret.into(), None).map_err(|e| e.to_string())?;
    Ok(c)
}

fn workload_identity() -> Result<Arc<dyn TokenCredential>, String> {
    if env("AZURE_FEDERATED_TOKEN_FILE").is_none() {
        return Err("AZURE_FEDERATED_TOKEN_FILE is not set".into());
    }
    let c = azure_identity::WorkloadIdentityCredential::new(None).map_err(|e| e.to_string())?;
    Ok(c)
}

fn managed_identity() -> Result<Arc<dyn TokenCredential>, String> {
    let mut options = azure_identity::ManagedIdentityCredentialOptions::default();
    if let Some(id) = env("AZURE_CLIENT_ID") {
        options.user_assigned_id = Some(azure_identity::UserAssignedId::ClientId(id));
    }
    let c = azure_identity::ManagedIdentityCredential::new(Some(options)).map_err(|e| e.to_string())?;
    Ok(c)
}

fn azure_cli() -> Result<Arc<dyn TokenCredential>, String> {
    let c = azure_identity::AzureCliCredential::new(None).map_err(|e| e.to_string())?;
    Ok(c)
}

impl ChainedCredential {
    /// Environment service principal, workload identity, managed identity, Azure CLI.
    pub fn default_chain() -> Self {
        Self {
            links: vec![
                ("environment service principal", env_service_principal as Factory),
                ("workload identity", workload_identity),
                ("managed identity", managed_identity),
                ("Azure CLI", azure_cli),
            ],
            chosen: Mutex::new(None),
        }
    }

    /// The names of the links, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.links.iter().map(|(n, _)| *n).collect()
    }
}

impl TokenSource for ChainedCredential {
    fn token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, RestError>> {
        Box::pin(async move {
            let mut chosen = self.chosen.lock().await;
            if let Some(c) = chosen.as_ref() {
                return c.fetch(scope).await.map_err(|reason| RestError::Token { scope: scope.to_string(), reason });
            }
            let mut why = Vec::new();
            for (name, make) in &self.links {
                let cred = match make() {
                    Ok(c) => Arc::new(IdentityTokenSource::new(name, c)),
                    Err(e) => {
                        why.push(format!("{name}: {e}"));
                        continue;
                    }
                };
                // Managed identity probes IMDS, which does not answer off Azure: do not wait long.
                match tokio::time::timeout(Duration::from_secs(20), cred.fetch(scope)).await {
                    Ok(Ok(t)) => {
                        tracing::debug!(credential = name, "using credential");
                        *chosen = Some(cred);
                        return Ok(t);
                    }
                    Ok(Err(e)) => why.push(e),
                    Err(_) => why.push(format!("{name}: timed out")),
                }
            }
            Err(RestError::Token {
                scope: scope.to_string(),
                reason: format!(
                    "no credential worked ({}); log in with `az login`, or pass --token-url/--client-id/--client-secret",
                    why.join("; ")
                ),
            })
        })
    }
}

/// A reqwest client that trusts `ca_pem` (PEM bundles) besides the system roots: azure-rest's.
pub use azure_rest::http_client;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_printed() {
        let a = AzureAuth::ClientCredentials {
            token_url: "https://login/t/oauth2/v2.0/token".into(),
            client_id: "c".into(),
            client_secret: "s3cr3t".into(),
        };
        assert!(!format!("{a:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", AzureAuth::Token("tok3n".into())).contains("tok3n"));
    }

    #[test]
    fn the_chain_is_in_the_documented_order() {
        assert_eq!(
            ChainedCredential::default_chain().names(),
            ["environment service principal", "workload identity", "managed identity", "Azure CLI"]
        );
    }

    #[tokio::test]
    async fn a_static_token_is_used_for_every_scope() {
        let ts = AzureAuth::Token("t".into()).token_source(http_client(&[]).unwrap());
        assert_eq!(ts.token(azure_rest::ARM_SCOPE).await.unwrap().token, "t");
        assert_eq!(ts.token(azure_rest::GRAPH_SCOPE).await.unwrap().token, "t");
    }
}
