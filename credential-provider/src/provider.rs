//! What the plugin answers for one image.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::{AcrClient, ClientSettings};
use crate::config::{CloudConfig, Credential};
use crate::error::ProviderError;
use crate::protocol::{AuthConfig, CredentialProviderRequest, CredentialProviderResponse};
use crate::registry::{ANONYMOUS_PATTERN, CONTAINER_REGISTRY_URLS, RegistryMirror, acr_login_server};

/// The username that goes with an ACR refresh token.
pub const ACR_TOKEN_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// How long the kubelet may cache an answer for an ACR image.
pub const CACHE_DURATION: Duration = Duration::from_secs(5 * 60);

/// Produces credentials the way AKS's `acr-credential-provider` does.
#[derive(Debug, Clone)]
pub struct Provider {
    config: CloudConfig,
    mirror: RegistryMirror,
    settings: ClientSettings,
}

impl Provider {
    /// A provider for a cloud config, registry mirrors and HTTP settings.
    pub fn new(config: CloudConfig, mirror: RegistryMirror, settings: ClientSettings) -> Self {
        Self { config, mirror, settings }
    }

    /// The answer for `image`:
    ///
    /// - not an ACR image: no credentials, `cacheDuration: 0s`;
    /// - managed identity: IMDS token -> `/v2/` challenge -> `/oauth2/exchange`, returned for the
    ///   login server (and a mirror's source host) as [`ACR_TOKEN_USERNAME`] + refresh token;
    /// - service principal: appId and secret for every `*.azurecr.<tld>` pattern;
    ///
    /// plus, for any ACR image, the anonymous `*.azurecr.*` entry. Any failure of the managed
    /// identity path is an error (the kubelet then pulls without the plugin's credentials).
    pub fn get_credentials(&self, image: &str) -> Result<CredentialProviderResponse, ProviderError> {
        let (target_image, source_registry) = self.mirror.apply(image);
        let Some(login_server) = acr_login_server(&target_image) else {
            return Ok(CredentialProviderResponse::registry(Duration::ZERO, BTreeMap::new()));
        };
        let mut auth = BTreeMap::from([(ANONYMOUS_PATTERN.to_owned(), AuthConfig::anonymous())]);
        match self.config.credential() {
            Credential::ManagedIdentity { identity, tenant_id } => {
                let wrap = |source: ProviderError| ProviderError::Acr {
                    login_server: login_server.to_owned(),
                    source: Box::new(source),
                };
                let client = AcrClient::new(&self.settings).map_err(wrap)?;
                let aad = client.imds_token(identity.as_ref()).map_err(wrap)?;
                let directive = client.challenge(login_server).map_err(wrap)?;
                let refresh = client.exchange(&directive, &tenant_id, &aad).map_err(wrap)?;
                let entry =
                    AuthConfig { username: ACR_TOKEN_USERNAME.to_owned(), password: refresh.expose().to_owned() };
                if let Some(source) = source_registry {
                    auth.insert(source, entry.clone());
                }
                auth.insert(login_server.to_owned(), entry);
            }
            Credential::ServicePrincipal { client_id, client_secret } => {
                for pattern in CONTAINER_REGISTRY_URLS {
                    auth.insert(
                        pattern.to_owned(),
                        AuthConfig { username: client_id.clone(), password: client_secret.clone() },
                    );
                }
            }
        }
        Ok(CredentialProviderResponse::registry(CACHE_DURATION, auth))
    }
}

/// The whole plugin: `args` (without the program name), the request text from stdin, and HTTP
/// settings; returns the response JSON for stdout.
///
/// `args` is `CLOUD_CONFIG_PATH [--registry-mirror=SRC:DST,...]` as on AKS nodes.
pub fn run(args: &[String], stdin: &str, settings: ClientSettings) -> Result<String, ProviderError> {
    let mut config_path = None;
    let mut mirror = RegistryMirror::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--registry-mirror=") {
            mirror = RegistryMirror::parse(value);
        } else if arg == "--registry-mirror" {
            let value = args.next().ok_or_else(|| ProviderError::Usage("--registry-mirror needs a value".into()))?;
            mirror = RegistryMirror::parse(value);
        } else if arg.starts_with('-') {
            return Err(ProviderError::Usage(format!("unknown flag {arg}")));
        } else if config_path.is_none() {
            config_path = Some(arg.clone());
        } else {
            return Err(ProviderError::Usage(format!("unexpected argument {arg}")));
        }
    }
    let config_path = config_path.ok_or_else(|| ProviderError::Usage("the cloud config path is missing".into()))?;
    let request = CredentialProviderRequest::from_json(stdin)?;
    let config = CloudConfig::load(std::path::Path::new(&config_path))?;
    let response = Provider::new(config, mirror, settings).get_credentials(&request.image)?;
    Ok(response.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> CloudConfig {
        CloudConfig::from_json(r#"{"tenantId":"t","aadClientId":"app-id","aadClientSecret":"app-secret"}"#).unwrap()
    }

    #[test]
    fn non_acr_images_get_nothing() {
        let provider = Provider::new(sp(), RegistryMirror::default(), ClientSettings::default());
        let response = provider.get_credentials("docker.io/library/nginx").unwrap();
        assert!(response.auth.is_empty());
        assert_eq!(response.cache_duration.as_deref(), Some("0s"));
    }

    #[test]
    fn service_principals_are_passed_through_with_the_anonymous_entry() {
        let provider = Provider::new(sp(), RegistryMirror::default(), ClientSettings::default());
        let response = provider.get_credentials("myacr.azurecr.io/app").unwrap();
        assert_eq!(response.cache_duration.as_deref(), Some("5m0s"));
        let keys: Vec<&str> = response.auth.keys().map(String::as_str).collect();
        assert_eq!(keys, ["*.azurecr.*", "*.azurecr.cn", "*.azurecr.de", "*.azurecr.io", "*.azurecr.us"]);
        assert_eq!(response.auth["*.azurecr.io"].username, "app-id");
        assert_eq!(response.auth["*.azurecr.io"].password, "app-secret");
        assert_eq!(response.auth["*.azurecr.*"], AuthConfig::anonymous());
    }

    #[test]
    fn run_checks_its_arguments() {
        let settings = ClientSettings::default;
        let request = r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"myacr.azurecr.io/app"}"#;
        assert!(matches!(run(&[], request, settings()), Err(ProviderError::Usage(_))));
        assert!(matches!(run(&["--bogus".into()], request, settings()), Err(ProviderError::Usage(_))));
        let err = run(&["/nonexistent/azure.json".into()], request, settings()).unwrap_err();
        assert!(matches!(err, ProviderError::Config { .. }), "{err}");
        let err = run(&["/nonexistent/azure.json".into()], "{}", settings()).unwrap_err();
        assert!(matches!(err, ProviderError::Request(_)), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azure.json");
        std::fs::write(&path, r#"{"tenantId":"t","aadClientId":"app-id","aadClientSecret":"app-secret"}"#).unwrap();
        let args =
            [path.display().to_string(), "--registry-mirror".into(), "mcr.microsoft.com:myacr.azurecr.io".into()];
        let mirrored = request.replace("myacr.azurecr.io/app", "mcr.microsoft.com/oss/app");
        let out = run(&args, &mirrored, settings()).unwrap();
        assert!(out.contains(r#""*.azurecr.io":{"username":"app-id","password":"app-secret"}"#), "{out}");
    }
}
