//! Image credential provider plugins as the kubelet runs them (`pkg/credentialprovider/plugin`):
//! the `CredentialProviderConfig` (`kubelet.config.k8s.io/v1`), `matchImages` filtering, one
//! exec per cache miss with a `CredentialProviderRequest` on stdin, and the response cache keyed
//! by image, registry or globally for `cacheDuration` (else the provider's
//! `defaultCacheDuration`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::clock::plus;
use crate::duration::parse_go_duration;
use crate::error::{KubeletError, PluginError};
use crate::keyring::{Credential, CredentialSource, urls_match_str};

/// `apiVersion` of a [`CredentialProviderConfig`].
pub const CONFIG_API_VERSION: &str = "kubelet.config.k8s.io/v1";
/// `kind` of a [`CredentialProviderConfig`].
pub const CONFIG_KIND: &str = "CredentialProviderConfig";
/// The plugin protocol version.
pub const PROTOCOL_API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// The match patterns AKS configures for `acr-credential-provider`.
pub const AKS_MATCH_IMAGES: [&str; 4] = ["*.azurecr.io", "*.azurecr.cn", "*.azurecr.de", "*.azurecr.us"];

fn config_api_version() -> String {
    CONFIG_API_VERSION.to_owned()
}

fn config_kind() -> String {
    CONFIG_KIND.to_owned()
}

/// The kubelet's `--image-credential-provider-config` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderConfig {
    /// [`CONFIG_API_VERSION`].
    #[serde(default = "config_api_version")]
    pub api_version: String,
    /// [`CONFIG_KIND`].
    #[serde(default = "config_kind")]
    pub kind: String,
    /// The plugins, tried in order.
    pub providers: Vec<CredentialProvider>,
}

/// One plugin of a [`CredentialProviderConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProvider {
    /// The binary's name inside `--image-credential-provider-bin-dir`.
    pub name: String,
    /// Image patterns (kubelet URL globs) the plugin is run for.
    pub match_images: Vec<String>,
    /// Cache duration when the response gives none (Go duration: `10m`).
    pub default_cache_duration: String,
    /// Protocol version: [`PROTOCOL_API_VERSION`].
    pub api_version: String,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables (added to the kubelet's own environment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<ExecEnvVar>,
}

/// An environment variable for a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecEnvVar {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

impl CredentialProvider {
    /// The provider AKS configures: `acr-credential-provider CLOUD_CONFIG` for the four ACR
    /// suffixes, `defaultCacheDuration: 10m`.
    pub fn aks(cloud_config_path: &str) -> Self {
        Self {
            name: "acr-credential-provider".to_owned(),
            match_images: AKS_MATCH_IMAGES.iter().map(|s| (*s).to_owned()).collect(),
            default_cache_duration: "10m".to_owned(),
            api_version: PROTOCOL_API_VERSION.to_owned(),
            args: vec![cloud_config_path.to_owned()],
            env: Vec::new(),
        }
    }
}

impl CredentialProviderConfig {
    /// A config with these providers.
    pub fn new(providers: Vec<CredentialProvider>) -> Self {
        Self { api_version: config_api_version(), kind: config_kind(), providers }
    }

    /// Reads the JSON form of the file (the kubelet accepts JSON or YAML).
    pub fn from_json(text: &str) -> Result<Self, KubeletError> {
        let config: Self = serde_json::from_str(text).map_err(|e| KubeletError::PluginConfig(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The file's JSON form, for a real kubelet (e.g. a kind node).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The kubelet's validation: version and kind, unique non-empty names without path
    /// separators, non-empty `matchImages`, a valid `defaultCacheDuration`, a known protocol
    /// version.
    pub fn validate(&self) -> Result<(), KubeletError> {
        let bad = |why: String| Err(KubeletError::PluginConfig(why));
        if self.api_version != CONFIG_API_VERSION || self.kind != CONFIG_KIND {
            return bad(format!("expected {CONFIG_API_VERSION} {CONFIG_KIND}, got {} {}", self.api_version, self.kind));
        }
        let mut names = Vec::new();
        for provider in &self.providers {
            if provider.name.is_empty()
                || provider.name.contains(['/', '\\'])
                || provider.name == "."
                || provider.name == ".."
            {
                return bad(format!("invalid provider name {:?}", provider.name));
            }
            if names.contains(&provider.name.as_str()) {
                return bad(format!("duplicate provider name {:?}", provider.name));
            }
            names.push(&provider.name);
            if provider.match_images.is_empty() {
                return bad(format!("provider {}: matchImages is required", provider.name));
            }
            if parse_go_duration(&provider.default_cache_duration).is_none() {
                return bad(format!(
                    "provider {}: invalid defaultCacheDuration {:?}",
                    provider.name, provider.default_cache_duration
                ));
            }
            if provider.api_version != PROTOCOL_API_VERSION {
                return bad(format!("provider {}: unsupported apiVersion {:?}", provider.name, provider.api_version));
            }
        }
        Ok(())
    }
}

/// Turns the plugin's command into the command actually run, e.g. to enter a network
/// namespace. The given command has program, arguments and environment set; stdio is set after
/// the wrapper runs.
pub type CommandWrapper = Arc<dyn Fn(std::process::Command) -> std::process::Command + Send + Sync>;

/// A wrapper running the plugin as `PREFIX... PROGRAM ARGS...`, keeping its environment and
/// working directory (e.g. `["ip", "netns", "exec", "node0"]`, or `nsenter --net=... --`).
pub fn prefix_command(prefix: Vec<String>) -> CommandWrapper {
    Arc::new(move |inner: std::process::Command| {
        let Some((program, rest)) = prefix.split_first() else { return inner };
        let mut outer = std::process::Command::new(program);
        outer.args(rest).arg(inner.get_program()).args(inner.get_args());
        for (key, value) in inner.get_envs() {
            match value {
                Some(value) => outer.env(key, value),
                None => outer.env_remove(key),
            };
        }
        if let Some(dir) = inner.get_current_dir() {
            outer.current_dir(dir);
        }
        outer
    })
}

/// One run (or cache hit) of a plugin, kept for logs and artifacts. Holds no credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInvocation {
    /// The provider's name.
    pub provider: String,
    /// The image asked for (repository, no tag).
    pub image: String,
    /// When.
    pub at: Timestamp,
    /// Whether the answer came from the cache.
    pub cached: bool,
    /// The registry patterns returned, or why nothing was.
    pub result: Result<Vec<String>, PluginError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    cache_key_type: String,
    #[serde(default)]
    cache_duration: Option<String>,
    #[serde(default)]
    auth: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

struct CacheEntry {
    entries: Vec<(String, Credential)>,
    expires_at: Timestamp,
}

const GLOBAL_CACHE_KEY: &str = "global";

/// A configured plugin with its cache.
pub(crate) struct PluginProvider {
    config: CredentialProvider,
    binary: PathBuf,
    default_cache_duration: Duration,
    cache: HashMap<String, CacheEntry>,
}

/// How plugins are run.
pub(crate) struct ExecContext<'a> {
    pub(crate) timeout: Duration,
    pub(crate) wrapper: Option<&'a CommandWrapper>,
}

/// The registry of an image (`parseRegistry`: everything before the first `/`).
fn registry_of(image: &str) -> &str {
    image.split('/').next().unwrap_or_default()
}

impl PluginProvider {
    pub(crate) fn new(config: CredentialProvider, bin_dir: &Path) -> Self {
        let default_cache_duration = parse_go_duration(&config.default_cache_duration).unwrap_or_default();
        Self { binary: bin_dir.join(&config.name), config, default_cache_duration, cache: HashMap::new() }
    }

    pub(crate) fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// The plugin's entries for `image` (a repository without tag), and a record of what
    /// happened (`None` when the image does not match `matchImages`).
    pub(crate) async fn provide(
        &mut self,
        image: &str,
        now: Timestamp,
        exec: &ExecContext<'_>,
    ) -> (Vec<(String, Credential)>, Option<PluginInvocation>) {
        if !self.config.match_images.iter().any(|pattern| urls_match_str(pattern, image)) {
            return (Vec::new(), None);
        }
        let record = |cached: bool, result: Result<Vec<String>, PluginError>| PluginInvocation {
            provider: self.config.name.clone(),
            image: image.to_owned(),
            at: now,
            cached,
            result,
        };
        self.cache.retain(|_, entry| entry.expires_at > now);
        for key in [image, registry_of(image), GLOBAL_CACHE_KEY] {
            if let Some(entry) = self.cache.get(key) {
                let patterns = entry.entries.iter().map(|(p, _)| p.clone()).collect();
                return (entry.entries.clone(), Some(record(true, Ok(patterns))));
            }
        }
        match self.exec(image, exec).await {
            Ok(response) => {
                let cache_key = match response.cache_key_type.as_str() {
                    "Image" => image.to_owned(),
                    "Registry" => registry_of(image).to_owned(),
                    "Global" => GLOBAL_CACHE_KEY.to_owned(),
                    other => {
                        let err = PluginError::Invalid(format!(
                            "credential provider plugin did not return a valid cacheKeyType: {other:?}"
                        ));
                        return (Vec::new(), Some(record(false, Err(err))));
                    }
                };
                let source = CredentialSource::Plugin { name: self.config.name.clone() };
                let entries: Vec<(String, Credential)> = response
                    .auth
                    .into_iter()
                    .map(|(pattern, a)| {
                        (pattern, Credential { username: a.username, password: a.password, source: source.clone() })
                    })
                    .collect();
                let duration = match response.cache_duration.as_deref() {
                    None => Some(self.default_cache_duration),
                    Some(text) => parse_go_duration(text),
                };
                if let Some(duration) = duration.filter(|d| !d.is_zero()) {
                    self.cache
                        .insert(cache_key, CacheEntry { entries: entries.clone(), expires_at: plus(now, duration) });
                }
                let patterns = entries.iter().map(|(p, _)| p.clone()).collect();
                (entries, Some(record(false, Ok(patterns))))
            }
            Err(err) => {
                tracing::warn!(provider = %self.config.name, image, error = %err,
                    "Failed getting credential from external registry credential provider");
                (Vec::new(), Some(record(false, Err(err))))
            }
        }
    }

    async fn exec(&self, image: &str, exec: &ExecContext<'_>) -> Result<Response, PluginError> {
        let name = self.config.name.clone();
        let mut command = std::process::Command::new(&self.binary);
        command.args(&self.config.args);
        for var in &self.config.env {
            command.env(&var.name, &var.value);
        }
        if let Some(wrapper) = exec.wrapper {
            command = wrapper(command);
        }
        let mut command = tokio::process::Command::from(command);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| PluginError::Spawn { binary: self.binary.display().to_string(), reason: e.to_string() })?;
        let request = serde_json::json!({
            "kind": "CredentialProviderRequest",
            "apiVersion": self.config.api_version,
            "image": image,
        })
        .to_string();
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin may exit without reading its input; its exit status tells what happened.
            let _ = stdin.write_all(request.as_bytes()).await;
        }
        let output = tokio::time::timeout(exec.timeout, child.wait_with_output())
            .await
            .map_err(|_| PluginError::Timeout { name: name.clone(), seconds: exec.timeout.as_secs() })?
            .map_err(|e| PluginError::Io { name: name.clone(), reason: e.to_string() })?;
        if !output.status.success() {
            let status = match output.status.code() {
                Some(code) => format!("exit status {code}"),
                None => "signal: killed".to_owned(),
            };
            return Err(PluginError::Exit {
                status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        let response: Response =
            serde_json::from_slice(&output.stdout).map_err(|e| PluginError::Decode(e.to_string()))?;
        if response.kind != "CredentialProviderResponse" {
            return Err(PluginError::Invalid(format!(
                "kind was {:?}, expected CredentialProviderResponse",
                response.kind
            )));
        }
        if response.api_version != self.config.api_version {
            return Err(PluginError::Invalid(format!(
                "apiVersion from credential plugin response did not match expected apiVersion:{}, actual apiVersion:{}",
                self.config.api_version, response.api_version
            )));
        }
        if let Some(text) = &response.cache_duration
            && parse_go_duration(text).is_none()
        {
            return Err(PluginError::Decode(format!("invalid cacheDuration {text:?}")));
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aks_config_validates_and_round_trips() {
        let config = CredentialProviderConfig::new(vec![CredentialProvider::aks("/etc/kubernetes/azure.json")]);
        config.validate().unwrap();
        let json = config.to_json();
        assert!(json.contains("\"matchImages\""));
        assert!(json.contains("\"defaultCacheDuration\": \"10m\""));
        assert_eq!(CredentialProviderConfig::from_json(&json).unwrap(), config);

        let mut bad = config.clone();
        bad.providers[0].name = "../x".into();
        assert!(bad.validate().is_err());
        let mut bad = config.clone();
        bad.providers[0].match_images.clear();
        assert!(bad.validate().is_err());
        let mut bad = config.clone();
        bad.providers[0].default_cache_duration = "ten".into();
        assert!(bad.validate().is_err());
        let mut bad = config;
        bad.providers.push(bad.providers[0].clone());
        assert!(bad.validate().is_err());
    }

    #[test]
    fn prefix_wrapper_keeps_program_args_and_env() {
        let wrapper = prefix_command(vec!["ip".into(), "netns".into(), "exec".into(), "node0".into()]);
        let mut inner = std::process::Command::new("/opt/bin/acr-credential-provider");
        inner.arg("/etc/kubernetes/azure.json").env("SSL_CERT_FILE", "/ca.pem");
        let outer = wrapper(inner);
        assert_eq!(outer.get_program(), "ip");
        let args: Vec<_> = outer.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["netns", "exec", "node0", "/opt/bin/acr-credential-provider", "/etc/kubernetes/azure.json"]);
        assert_eq!(outer.get_envs().count(), 1);
    }
}
