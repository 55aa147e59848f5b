//! The plugin's HTTP calls: an IMDS managed-identity token, the registry's `/v2/` challenge,
//! and the ACR token exchange.
//!
//! TLS uses rustls. When `SSL_CERT_FILE` is set its certificates *replace* the built-in Mozilla
//! roots, as Go's crypto/x509 treats that variable (give it the system bundle plus a test CA to
//! trust both).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use ureq::Agent;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::config::IdentityId;
use crate::error::ProviderError;

/// Env var overriding the IMDS base URL (default [`DEFAULT_IMDS_ENDPOINT`]).
pub const IMDS_ENDPOINT_ENV: &str = "ACR_CREDENTIAL_PROVIDER_IMDS_ENDPOINT";
/// Env var naming a PEM bundle of trusted roots (replaces the built-in roots).
pub const SSL_CERT_FILE_ENV: &str = "SSL_CERT_FILE";
/// Env var for tests: comma-separated `HOST:PORT:ADDR:PORT2` rules (curl's `--connect-to`)
/// that send connections for `HOST:PORT` to the IP `ADDR` port `PORT2`, keeping the host name
/// for TLS and the `Host` header.
pub const CONNECT_TO_ENV: &str = "ACR_CREDENTIAL_PROVIDER_CONNECT_TO";
/// Overrides the budget of one HTTP call, in whole seconds (default 60, as upstream). A kubelet
/// admin sets it through the `env` of the plugin's CredentialProviderConfig.
pub const TIMEOUT_ENV: &str = "ACR_CREDENTIAL_PROVIDER_TIMEOUT";
/// Azure's instance metadata service.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The IMDS token path.
pub const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
/// The IMDS api-version the plugin uses.
pub const IMDS_API_VERSION: &str = "2018-02-01";
/// The resource (audience) of the token exchanged with ACR.
pub const ACR_RESOURCE: &str = "https://containerregistry.azure.net/";
/// The user agent of the upstream plugin.
pub const USER_AGENT: &str = "kubernetes-credentialprovider-acr";

/// Largest response body read.
const MAX_BODY: u64 = 10 << 20;

/// A bearer or refresh token: never printed by [`fmt::Debug`].
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// One `--connect-to` style rule: connections for `host:port` go to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// Host name as it appears in URLs (compared case-insensitively).
    pub host: String,
    /// Port as it appears in URLs (443 for `https://HOST/`).
    pub port: u16,
    /// Where to connect instead.
    pub target: SocketAddr,
}

impl ConnectTo {
    /// Parses `HOST:PORT:ADDR:PORT2`; `ADDR` is an IP address (IPv6 in brackets).
    ///
    /// ```
    /// use acr_credential_provider::client::ConnectTo;
    ///
    /// let rule = ConnectTo::parse("myacr.azurecr.io:443:127.0.0.1:8443").unwrap();
    /// assert_eq!(rule.target.to_string(), "127.0.0.1:8443");
    /// ```
    pub fn parse(rule: &str) -> Result<Self, ProviderError> {
        let bad = |why: &str| ProviderError::Client(format!("{CONNECT_TO_ENV} rule {rule:?}: {why}"));
        let (host, rest) = rule.split_once(':').ok_or_else(|| bad("expected HOST:PORT:ADDR:PORT2"))?;
        let (port, rest) = rest.split_once(':').ok_or_else(|| bad("expected HOST:PORT:ADDR:PORT2"))?;
        let (addr, target_port) = rest.rsplit_once(':').ok_or_else(|| bad("expected HOST:PORT:ADDR:PORT2"))?;
        let port: u16 = port.parse().map_err(|_| bad("PORT is not a port number"))?;
        let target_port: u16 = target_port.parse().map_err(|_| bad("PORT2 is not a port number"))?;
        let addr: IpAddr =
            addr.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| bad("ADDR is not an IP address"))?;
        if host.is_empty() {
            return Err(bad("HOST is empty"));
        }
        Ok(Self { host: host.to_ascii_lowercase(), port, target: SocketAddr::new(addr, target_port) })
    }
}

/// Where the plugin's HTTP calls go and what they trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// IMDS base URL (`http://169.254.169.254`).
    pub imds_endpoint: String,
    /// PEM bundle replacing the built-in roots (`SSL_CERT_FILE`).
    pub ca_file: Option<PathBuf>,
    /// Connection overrides (tests only).
    pub connect_to: Vec<ConnectTo>,
    /// Budget of one HTTP call, connection included (the upstream plugin uses 60 s).
    pub timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            imds_endpoint: DEFAULT_IMDS_ENDPOINT.to_owned(),
            ca_file: None,
            connect_to: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }
}

impl ClientSettings {
    /// Reads [`IMDS_ENDPOINT_ENV`], [`SSL_CERT_FILE_ENV`] and [`CONNECT_TO_ENV`] from the
    /// process environment.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`ClientSettings::from_env`] with another source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        let mut settings = Self::default();
        if let Some(endpoint) = lookup(IMDS_ENDPOINT_ENV).filter(|v| !v.trim().is_empty()) {
            settings.imds_endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        }
        settings.ca_file = lookup(SSL_CERT_FILE_ENV).filter(|v| !v.trim().is_empty()).map(PathBuf::from);
        if let Some(secs) = lookup(TIMEOUT_ENV).filter(|v| !v.trim().is_empty()) {
            let secs: u64 = secs
                .trim()
                .parse()
                .map_err(|_| ProviderError::Request(format!("{TIMEOUT_ENV} must be whole seconds, not `{secs}`")))?;
            settings.timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(rules) = lookup(CONNECT_TO_ENV) {
            settings.connect_to = rules
                .split(',')
                .map(str::trim)
                .filter(|rule| !rule.is_empty())
                .map(ConnectTo::parse)
                .collect::<Result<_, _>>()?;
        }
        Ok(settings)
    }
}

/// Applies [`ConnectTo`] rules, else resolves normally.
#[derive(Debug)]
struct ConnectToResolver {
    rules: Vec<ConnectTo>,
    fallback: DefaultResolver,
}

impl Resolver for ConnectToResolver {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(authority) = uri.authority() {
            let default_port = if uri.scheme_str() == Some("http") { 80 } else { 443 };
            let port = authority.port_u16().unwrap_or(default_port);
            let host = authority.host().to_ascii_lowercase();
            if let Some(rule) = self.rules.iter().find(|rule| rule.host == host && rule.port == port) {
                let mut addrs = self.empty();
                addrs.push(rule.target);
                return Ok(addrs);
            }
        }
        self.fallback.resolve(uri, config, timeout)
    }
}

/// The two parameters of a registry's `Www-Authenticate: Bearer` challenge that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthDirective {
    /// `realm`: the token endpoint (`https://myacr.azurecr.io/oauth2/token`).
    pub realm: String,
    /// `service`: the registry's service name (`myacr.azurecr.io`).
    pub service: String,
}

impl AuthDirective {
    /// Reads a `Www-Authenticate` value; only `Bearer` challenges with `realm` and `service`
    /// are accepted.
    ///
    /// ```
    /// use acr_credential_provider::client::AuthDirective;
    ///
    /// let d = AuthDirective::parse(r#"Bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io""#).unwrap();
    /// assert_eq!(d.exchange_url().unwrap(), "https://myacr.azurecr.io/oauth2/exchange");
    /// ```
    pub fn parse(header: &str) -> Result<Self, ProviderError> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_assignments(params).ok_or_else(|| {
            ProviderError::Challenge(format!("unable to understand the contents of Www-Authenticate header {params}"))
        })?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ProviderError::Challenge(format!(
                "Www-Authenticate: expected realm: Bearer, actual: {}",
                scheme.to_ascii_lowercase()
            )));
        }
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
        let (realm, service) = (get("realm"), get("service"));
        if service.is_empty() {
            return Err(ProviderError::Challenge("Www-Authenticate: missing header \"service\"".to_owned()));
        }
        if realm.is_empty() {
            return Err(ProviderError::Challenge("Www-Authenticate: missing header \"realm\"".to_owned()));
        }
        Ok(Self { realm, service })
    }

    /// `SCHEME://HOST/oauth2/exchange` of the realm, as the upstream plugin builds it.
    pub fn exchange_url(&self) -> Result<String, ProviderError> {
        let invalid = || ProviderError::Challenge(format!("Www-Authenticate: invalid realm {}", self.realm));
        let (scheme, rest) = self.realm.split_once("://").ok_or_else(invalid)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if scheme.is_empty() || host.is_empty() {
            return Err(invalid());
        }
        Ok(format!("{scheme}://{host}/oauth2/exchange"))
    }
}

/// `key1 = value1, key2 = "value 2"` (no escapes), as the upstream plugin reads challenges.
fn parse_assignments(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let (value, remaining) = quoted.split_once('"')?;
            let remaining = remaining.trim_start();
            if !(remaining.is_empty() || remaining.starts_with(',')) {
                return None;
            }
            (value.to_owned(), remaining.strip_prefix(',').unwrap_or(remaining))
        } else {
            let (value, remaining) = after.split_once(',').unwrap_or((after, ""));
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            (value.to_owned(), remaining)
        };
        out.push((key.trim().to_owned(), value));
        rest = remaining.trim_start();
    }
    (!out.is_empty()).then_some(out)
}

/// The plugin's HTTP client.
#[derive(Debug)]
pub struct AcrClient {
    agent: Agent,
    imds_endpoint: String,
}

#[derive(Deserialize)]
struct ImdsToken {
    #[serde(default)]
    access_token: String,
}

#[derive(Deserialize)]
struct ImdsError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct ExchangeResponse {
    #[serde(default)]
    refresh_token: String,
}

fn reason(status: ureq::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(phrase) => format!("{} {phrase}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A short, single-line excerpt of an error body.
fn excerpt(body: &str) -> String {
    let flat: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let flat = flat.trim();
    match flat.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &flat[..at]),
        None => flat.to_owned(),
    }
}

fn read_body(response: &mut ureq::http::Response<ureq::Body>) -> Result<String, ureq::Error> {
    response.body_mut().with_config().limit(MAX_BODY).read_to_string()
}

impl AcrClient {
    /// Builds the client: TLS roots from `SSL_CERT_FILE` (else Mozilla's), the connect-to
    /// rules, the timeout.
    pub fn new(settings: &ClientSettings) -> Result<Self, ProviderError> {
        let roots = match &settings.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ProviderError::Client(format!("cannot read {SSL_CERT_FILE_ENV} {}: {e}", path.display()))
                })?;
                let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(cert)) => Some(cert),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(ProviderError::Client(format!(
                        "{SSL_CERT_FILE_ENV} {} holds no PEM certificate",
                        path.display()
                    )));
                }
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::WebPki,
        };
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .user_agent(USER_AGENT)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        let resolver = ConnectToResolver { rules: settings.connect_to.clone(), fallback: DefaultResolver::default() };
        let agent = Agent::with_parts(config, DefaultConnector::default(), resolver);
        Ok(Self { agent, imds_endpoint: settings.imds_endpoint.trim_end_matches('/').to_owned() })
    }

    /// Asks IMDS for a token for [`ACR_RESOURCE`] on behalf of `identity` (the system-assigned
    /// identity when `None`).
    pub fn imds_token(&self, identity: Option<&IdentityId>) -> Result<Token, ProviderError> {
        let url = format!("{}{IMDS_TOKEN_PATH}", self.imds_endpoint);
        let mut request = self
            .agent
            .get(&url)
            .query("api-version", IMDS_API_VERSION)
            .query("resource", ACR_RESOURCE)
            .header("Metadata", "true");
        request = match identity {
            Some(IdentityId::ClientId(id)) => request.query("client_id", id),
            Some(IdentityId::ResourceId(id)) => request.query("msi_res_id", id),
            None => request,
        };
        let mut response =
            request.call().map_err(|e| ProviderError::ImdsUnreachable { url: url.clone(), reason: e.to_string() })?;
        let body =
            read_body(&mut response).map_err(|e| ProviderError::ImdsUnreachable { url, reason: e.to_string() })?;
        let status = response.status();
        if !status.is_success() {
            let detail = match serde_json::from_str::<ImdsError>(&body) {
                Ok(err) if !err.error_description.is_empty() || !err.error.is_empty() => {
                    match (err.error.is_empty(), err.error_description.is_empty()) {
                        (false, false) => format!("{}: {}", err.error, err.error_description),
                        (true, _) => err.error_description,
                        (_, true) => err.error,
                    }
                }
                _ => excerpt(&body),
            };
            return Err(ProviderError::Imds { status: reason(status), detail });
        }
        let token: ImdsToken = serde_json::from_str(&body).map_err(|_| ProviderError::ImdsNoToken)?;
        if token.access_token.is_empty() {
            return Err(ProviderError::ImdsNoToken);
        }
        Ok(Token(token.access_token))
    }

    /// `GET https://LOGIN_SERVER/v2/` and reads the Bearer challenge of its 401.
    pub fn challenge(&self, login_server: &str) -> Result<AuthDirective, ProviderError> {
        let url = format!("https://{login_server}/v2/");
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| ProviderError::ChallengeUnreachable { url: url.clone(), reason: e.to_string() })?;
        // Drain (bounded) so the connection can be reused; the content does not matter.
        let _ = read_body(&mut response);
        let status = response.status().as_u16();
        if status != 401 {
            return Err(ProviderError::Challenge(format!(
                "registry did not issue a valid AAD challenge, status: {status}"
            )));
        }
        let headers: Vec<&str> =
            response.headers().get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()).collect();
        match headers.as_slice() {
            [] => Err(ProviderError::Challenge("challenge response does not contain header 'Www-Authenticate'".into())),
            [one] => AuthDirective::parse(one),
            many => Err(ProviderError::Challenge(format!(
                "registry did not issue a valid AAD challenge, authenticate header [{}]",
                many.join(", ")
            ))),
        }
    }

    /// `POST REALM_HOST/oauth2/exchange` with `grant_type=access_token`, `service`, `tenant`
    /// and `access_token`; returns the ACR refresh token.
    pub fn exchange(
        &self,
        directive: &AuthDirective,
        tenant: &str,
        access_token: &Token,
    ) -> Result<Token, ProviderError> {
        let url = directive.exchange_url()?;
        let form = [
            ("grant_type", "access_token"),
            ("service", directive.service.as_str()),
            ("tenant", tenant),
            ("access_token", access_token.expose()),
        ];
        let mut response = self
            .agent
            .post(&url)
            .send_form(form)
            .map_err(|e| ProviderError::ExchangeUnreachable { url: url.clone(), reason: e.to_string() })?;
        let status = response.status().as_u16();
        let body = read_body(&mut response);
        if status != 200 {
            return Err(ProviderError::Exchange { url, status });
        }
        let body = body.map_err(|_| ProviderError::ExchangeBody { url: url.clone() })?;
        match serde_json::from_str::<ExchangeResponse>(&body) {
            Ok(parsed) if !parsed.refresh_token.is_empty() => Ok(Token(parsed.refresh_token)),
            _ => Err(ProviderError::ExchangeBody { url }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_variables() {
        let vars = |name: &str| match name {
            IMDS_ENDPOINT_ENV => Some("http://127.0.0.1:9999/".to_owned()),
            SSL_CERT_FILE_ENV => Some("/tmp/ca.pem".to_owned()),
            CONNECT_TO_ENV => Some("a.azurecr.io:443:127.0.0.1:8443, b.azurecr.io:443:[::1]:9443".to_owned()),
            _ => None,
        };
        let settings = ClientSettings::from_lookup(vars).unwrap();
        assert_eq!(settings.imds_endpoint, "http://127.0.0.1:9999");
        assert_eq!(settings.ca_file, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(settings.connect_to.len(), 2);
        assert_eq!(settings.connect_to[1].target.to_string(), "[::1]:9443");
        assert_eq!(ClientSettings::from_lookup(|_| None).unwrap(), ClientSettings::default());
        assert!(ClientSettings::from_lookup(|n| (n == CONNECT_TO_ENV).then(|| "x:1:notip:2".to_owned())).is_err());
    }

    #[test]
    fn challenges() {
        let d = AuthDirective::parse(
            r#"Bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io",scope="repository:app:pull""#,
        )
        .unwrap();
        assert_eq!(d.service, "myacr.azurecr.io");
        assert_eq!(d.exchange_url().unwrap(), "https://myacr.azurecr.io/oauth2/exchange");

        let d = AuthDirective::parse("bearer realm=https://tokens.example:8443/acr/token, service=reg").unwrap();
        assert_eq!(d.exchange_url().unwrap(), "https://tokens.example:8443/oauth2/exchange");

        let err = AuthDirective::parse(r#"Basic realm="Registry Realm""#).unwrap_err();
        assert!(err.to_string().contains("expected realm: Bearer, actual: basic"), "{err}");
        assert!(
            AuthDirective::parse(r#"Bearer realm="https://x/oauth2/token""#)
                .unwrap_err()
                .to_string()
                .contains("service")
        );
        assert!(AuthDirective::parse(r#"Bearer realm="unterminated"#).is_err());
        assert!(AuthDirective { realm: "nope".into(), service: "s".into() }.exchange_url().is_err());
    }

    #[test]
    fn tokens_are_not_printed() {
        assert_eq!(format!("{:?}", Token::new("eyJ0eXAi.secret")), "Token(<redacted>)");
    }

    #[test]
    fn excerpts_are_short_and_flat() {
        assert_eq!(excerpt("a\nb"), "a b");
        assert_eq!(excerpt(&"x".repeat(300)).len(), 203);
    }
}
