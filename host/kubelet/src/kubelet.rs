//! The kubelet's image pull path for one pod (`SyncPod` -> `startContainer` ->
//! `EnsureImageExists` -> `PullImage`), writing pod status and events as the kubelet does.
//!
//! No container is ever started: a container whose image was pulled (or was present) is
//! reported `Running` (`ready: true`, a made-up `containerID`), which is all image-pull
//! diagnosis looks at.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, HostIP, Pod,
    PodCondition, PodStatus, Secret,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::backoff::Backoff;
use crate::cluster::{Cluster, EventRecord, NORMAL, Reporter, WARNING, pod_reference};
use crate::duration::format_go_duration;
use crate::error::KubeletError;
use crate::image::{ImageName, apply_default_tag};
use crate::keyring::{Keyring, secret_entries};
use crate::plugin::{CommandWrapper, CredentialProviderConfig, ExecContext, PluginInvocation, PluginProvider};
use crate::pull::{Auth, ImageService, PulledImage, aggregate};
use crate::version::KubeletVersion;

/// The kubelet's settings that matter for pulls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletConfig {
    /// The node this kubelet runs (it syncs only pods bound to it).
    pub node_name: String,
    /// Kubernetes version (decides message formats).
    pub version: KubeletVersion,
    /// `--image-credential-provider-config`.
    pub credential_provider_config: Option<CredentialProviderConfig>,
    /// `--image-credential-provider-bin-dir`.
    pub credential_provider_bin_dir: PathBuf,
    /// How long one plugin run may take.
    pub plugin_timeout: Duration,
    /// First image pull back-off (10 s).
    pub backoff_initial: Duration,
    /// Longest image pull back-off (300 s).
    pub backoff_max: Duration,
}

impl KubeletConfig {
    /// The defaults for `node_name`: v1.33.2, no plugins, the kubelet's back-off.
    pub fn new(node_name: &str) -> Self {
        Self {
            node_name: node_name.to_owned(),
            version: KubeletVersion::DEFAULT,
            credential_provider_config: None,
            credential_provider_bin_dir: PathBuf::from("/var/lib/kubelet/credential-provider"),
            plugin_timeout: Duration::from_secs(60),
            backoff_initial: crate::backoff::INITIAL,
            backoff_max: crate::backoff::MAX,
        }
    }
}

/// Where one container's image stands after a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullState {
    /// It was already running; nothing was done.
    AlreadyRunning,
    /// The image was pulled (or present): the container is reported Running.
    Running {
        /// The image reference (`imageID`).
        image_ref: String,
    },
    /// The container waits: `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`,
    /// `ErrImageNeverPull` or `ImageInspectError`.
    Waiting {
        /// The waiting reason.
        reason: String,
        /// The waiting message.
        message: String,
    },
}

/// One container's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSync {
    /// Container name.
    pub container: String,
    /// The image as the spec names it.
    pub image: String,
    /// What happened.
    pub state: PullState,
}

/// The result of [`Kubelet::sync_pod`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSync {
    /// The pod is not bound to a node yet.
    Unscheduled,
    /// The pod is bound to another node (named).
    OtherNode(String),
    /// The pod was synced; one entry per container, in spec order.
    Synced(Vec<ContainerSync>),
}

impl PodSync {
    /// Whether every container is running.
    pub fn is_running(&self) -> bool {
        matches!(self, PodSync::Synced(containers)
            if containers.iter().all(|c| matches!(c.state, PullState::AlreadyRunning | PullState::Running { .. })))
    }
}

/// One node's kubelet.
///
/// Syncs must run inside a Tokio runtime with its I/O and time drivers enabled when credential
/// provider plugins are configured (plugins are run with `tokio::process` under a timeout).
/// Time (back-off, plugin cache expiry) is read from the [`Cluster`]'s clock, so one
/// [`crate::ManualClock`] drives both.
pub struct Kubelet {
    config: KubeletConfig,
    wrapper: Option<CommandWrapper>,
    providers: Vec<PluginProvider>,
    backoff: Backoff,
    prev_pull_err: HashMap<String, String>,
    invocations: Vec<PluginInvocation>,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Go's `%q` for the plain strings image names are.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn truncate_ms(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

impl Kubelet {
    /// A kubelet with `config`; the credential provider config is validated.
    pub fn new(config: KubeletConfig) -> Result<Self, KubeletError> {
        let mut providers = Vec::new();
        if let Some(plugins) = &config.credential_provider_config {
            plugins.validate()?;
            for provider in &plugins.providers {
                providers.push(PluginProvider::new(provider.clone(), &config.credential_provider_bin_dir));
            }
        }
        Ok(Self {
            backoff: Backoff::new(config.backoff_initial, config.backoff_max),
            config,
            wrapper: None,
            providers,
            prev_pull_err: HashMap::new(),
            invocations: Vec::new(),
        })
    }

    /// Runs credential provider plugins through `wrapper` (e.g. inside the node's network
    /// namespace; see [`crate::plugin::prefix_command`]).
    pub fn with_command_wrapper(mut self, wrapper: CommandWrapper) -> Self {
        self.wrapper = Some(wrapper);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &KubeletConfig {
        &self.config
    }

    /// Every plugin run and cache hit so far (no credentials in them).
    pub fn plugin_invocations(&self) -> &[PluginInvocation] {
        &self.invocations
    }

    /// Forgets every image pull back-off (as if enough time had passed).
    pub fn reset_backoff(&mut self) {
        self.backoff.clear();
    }

    /// Forgets cached plugin answers (the next pull runs the plugins again).
    pub fn clear_credential_cache(&mut self) {
        for provider in &mut self.providers {
            provider.clear_cache();
        }
    }

    /// Syncs every pod bound to this node, in store order.
    pub async fn sync_node<S: ImageService + Sync>(
        &mut self,
        cluster: &mut Cluster,
        runtime: &S,
        force: bool,
    ) -> Result<Vec<(String, String, PodSync)>, KubeletError> {
        let mine: Vec<(String, String)> = cluster
            .pods()
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(self.config.node_name.as_str()))
            .map(|p| (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default()))
            .collect();
        let mut out = Vec::new();
        for (namespace, name) in mine {
            // A pod deleted by a rollout triggered by an earlier sync is simply gone.
            if cluster.pod(&namespace, &name).is_none() {
                continue;
            }
            let result = self.sync_pod(cluster, &namespace, &name, runtime, force).await?;
            out.push((namespace, name, result));
        }
        Ok(out)
    }

    /// Syncs pod `namespace/name` as the kubelet's `SyncPod` does for image pulls: pull
    /// secrets (a `FailedToRetrieveImagePullSecret` warning for missing ones), then for each
    /// container not yet running, `EnsureImageExists` (back-off, `Pulling`, one CRI pull per
    /// matching credential, `Pulled` or `Failed`), then the pod status.
    ///
    /// With `force`, a container in back-off is pulled now (as if the back-off had expired).
    pub async fn sync_pod<S: ImageService + Sync>(
        &mut self,
        cluster: &mut Cluster,
        namespace: &str,
        name: &str,
        runtime: &S,
        force: bool,
    ) -> Result<PodSync, KubeletError> {
        let pod =
            cluster.pod(namespace, name).cloned().ok_or_else(|| crate::cluster::not_found("Pod", namespace, name))?;
        let spec = pod.spec.clone().unwrap_or_default();
        match spec.node_name.as_deref() {
            None => return Ok(PodSync::Unscheduled),
            Some(node) if node != self.config.node_name => return Ok(PodSync::OtherNode(node.to_owned())),
            Some(_) => {}
        }
        let secrets = self.pull_secrets(cluster, &pod);
        let previous: HashMap<String, ContainerStatus> = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();

        let mut results = Vec::new();
        let mut statuses = Vec::new();
        for container in &spec.containers {
            let image = container.image.clone().unwrap_or_default();
            if let Some(status) = previous.get(&container.name)
                && status.state.as_ref().is_some_and(|s| s.running.is_some())
            {
                statuses.push(status.clone());
                results.push(ContainerSync {
                    container: container.name.clone(),
                    image,
                    state: PullState::AlreadyRunning,
                });
                continue;
            }
            let state = self.start_container(cluster, &pod, container, &secrets, runtime, force).await;
            statuses.push(self.container_status(&pod, container, &state, cluster.clock().now()));
            results.push(ContainerSync { container: container.name.clone(), image, state });
        }
        let status = self.pod_status(cluster, &pod, statuses);
        cluster.set_pod_status(namespace, name, status)?;
        Ok(PodSync::Synced(results))
    }

    /// `getPullSecretsForPod`.
    fn pull_secrets(&self, cluster: &mut Cluster, pod: &Pod) -> Vec<Secret> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for reference in pod.spec.as_ref().and_then(|s| s.image_pull_secrets.as_ref()).into_iter().flatten() {
            if reference.name.is_empty() {
                continue;
            }
            match cluster.secret(&namespace, &reference.name) {
                Some(secret) => found.push(secret.clone()),
                None => missing.push(reference.name.clone()),
            }
        }
        if !missing.is_empty() {
            cluster.record_event(EventRecord {
                involved: pod_reference(pod, None),
                type_: WARNING.to_owned(),
                reason: "FailedToRetrieveImagePullSecret".to_owned(),
                message: format!(
                    "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                    missing.join(", ")
                ),
                reporter: Reporter::kubelet(&self.config.node_name),
            });
        }
        found
    }

    /// `startContainer` up to the image: `EnsureImageExists` plus its `Error: REASON` event.
    async fn start_container<S: ImageService + Sync>(
        &mut self,
        cluster: &mut Cluster,
        pod: &Pod,
        container: &Container,
        secrets: &[Secret],
        runtime: &S,
        force: bool,
    ) -> PullState {
        let reference = pod_reference(pod, Some(format!("spec.containers{{{}}}", container.name)));
        let node = self.config.node_name.clone();
        let mut event = |cluster: &mut Cluster, type_: &str, reason: &str, message: String| {
            cluster.record_event(EventRecord {
                involved: reference.clone(),
                type_: type_.to_owned(),
                reason: reason.to_owned(),
                message,
                reporter: Reporter::kubelet(&node),
            });
        };
        let waiting = |cluster: &mut Cluster,
                       event: &mut dyn FnMut(&mut Cluster, &str, &str, String),
                       reason: &str,
                       message: String| {
            event(cluster, WARNING, "Failed", format!("Error: {reason}"));
            PullState::Waiting { reason: reason.to_owned(), message }
        };

        let requested = container.image.clone().unwrap_or_default();
        let image = match apply_default_tag(&requested) {
            Ok(image) => image,
            Err(err) => {
                let message = format!("Failed to apply default image tag {}: {err}", quote(&requested));
                event(cluster, WARNING, "InspectFailed", message.clone());
                return waiting(cluster, &mut event, "InvalidImageName", message);
            }
        };
        let quoted = quote(&image);
        let policy = container.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
        let present = if policy == "Always" {
            None
        } else {
            match runtime.image_ref(&image).await {
                Ok(found) => found,
                Err(err) => {
                    let message = format!("Failed to inspect image {quoted}: {}", err.text(self.config.version));
                    event(cluster, WARNING, "InspectFailed", message.clone());
                    return waiting(cluster, &mut event, "ImageInspectError", message);
                }
            }
        };
        let should_pull = match policy {
            "Never" => false,
            "Always" => true,
            _ => present.is_none(),
        };
        if !should_pull {
            return match present {
                Some(image_ref) => {
                    event(cluster, NORMAL, "Pulled", format!("Container image {quoted} already present on machine"));
                    PullState::Running { image_ref }
                }
                None => {
                    let message = format!("Container image {quoted} is not present with pull policy of Never");
                    event(cluster, WARNING, "ErrImageNeverPull", message.clone());
                    waiting(cluster, &mut event, "ErrImageNeverPull", message)
                }
            };
        }

        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = format!("{uid}_{image}");
        if !force && self.backoff.is_in_backoff(&key, cluster.clock().now()) {
            let mut message = format!("Back-off pulling image {quoted}");
            event(cluster, NORMAL, "BackOff", message.clone());
            if self.config.version.back_off_message_has_error()
                && let Some(previous) = self.prev_pull_err.get(&key)
            {
                message = format!("{message}: {previous}");
            }
            return waiting(cluster, &mut event, "ImagePullBackOff", message);
        }
        self.prev_pull_err.remove(&key);
        event(cluster, NORMAL, "Pulling", format!("Pulling image {quoted}"));
        let started = Instant::now();
        match self.pull_image(cluster.clock().now(), &image, secrets, runtime).await {
            Ok((pulled, pull_duration)) => {
                let total = started.elapsed();
                event(
                    cluster,
                    NORMAL,
                    "Pulled",
                    format!(
                        "Successfully pulled image {quoted} in {} ({} including waiting). Image size: {} bytes.",
                        format_go_duration(truncate_ms(pull_duration)),
                        format_go_duration(truncate_ms(total)),
                        pulled.size_bytes
                    ),
                );
                PullState::Running { image_ref: pulled.image_ref }
            }
            Err(error) => {
                event(cluster, WARNING, "Failed", format!("Failed to pull image {quoted}: {error}"));
                self.backoff.next(&key, cluster.clock().now());
                // `evalCRIPullErr`: containerd's errors are all ErrImagePull (the
                // RegistryUnavailable / SignatureValidationFailed prefixes come from other runtimes).
                self.prev_pull_err.insert(key, format!("ErrImagePull: {error}"));
                waiting(cluster, &mut event, "ErrImagePull", error)
            }
        }
    }

    /// `PullImage` of the runtime manager: the keyring of the pod's pull secrets, then the
    /// plugins' keyring; no credential at all means one anonymous pull, else one pull per
    /// credential until one succeeds, the errors aggregated.
    async fn pull_image<S: ImageService + Sync>(
        &mut self,
        now: Timestamp,
        image: &str,
        secrets: &[Secret],
        runtime: &S,
    ) -> Result<(PulledImage, Duration), String> {
        let started = Instant::now();
        let version = self.config.version;
        let repository = ImageName::parse(image).map(|n| n.repository).unwrap_or_else(|_| image.to_owned());

        let mut secret_keyring = Keyring::default();
        for secret in secrets {
            match secret_entries(secret) {
                Ok(Some(entries)) => secret_keyring.add(entries),
                Ok(None) => {}
                Err(err) => tracing::warn!(
                    secret = secret.metadata.name.as_deref().unwrap_or_default(),
                    error = %err,
                    "skipping a pull secret whose docker config does not decode"
                ),
            }
        }
        let mut credentials = secret_keyring.lookup(&repository);

        let mut provider_keyring = Keyring::default();
        let exec = ExecContext { timeout: self.config.plugin_timeout, wrapper: self.wrapper.as_ref() };
        for provider in &mut self.providers {
            let (entries, invocation) = provider.provide(&repository, now, &exec).await;
            self.invocations.extend(invocation);
            provider_keyring.add(entries);
        }
        credentials.extend(provider_keyring.lookup(&repository));

        if credentials.is_empty() {
            return runtime.pull(image, None).await.map(|p| (p, started.elapsed())).map_err(|e| e.text(version));
        }
        let mut errors = Vec::new();
        for credential in credentials {
            let auth = (!credential.is_anonymous())
                .then(|| Auth { username: credential.username.clone(), password: credential.password.clone() });
            match runtime.pull(image, auth.as_ref()).await {
                Ok(pulled) => return Ok((pulled, started.elapsed())),
                Err(err) => errors.push(err.text(version)),
            }
        }
        Err(aggregate(&errors))
    }

    fn container_status(&self, pod: &Pod, container: &Container, state: &PullState, now: Timestamp) -> ContainerStatus {
        let image = container.image.clone().unwrap_or_default();
        let mut status = ContainerStatus {
            name: container.name.clone(),
            image: image.clone(),
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            last_state: Some(ContainerState::default()),
            ..ContainerStatus::default()
        };
        match state {
            PullState::Running { image_ref } => {
                let seed = format!("{}/{}", pod.metadata.uid.as_deref().unwrap_or_default(), container.name);
                status.container_id = Some(format!("containerd://{}", pseudo_id(&seed)));
                status.image = apply_default_tag(&image).unwrap_or(image);
                status.image_id = image_ref.clone();
                status.ready = true;
                status.started = Some(true);
                status.state = Some(ContainerState {
                    running: Some(ContainerStateRunning { started_at: Some(Time(now)) }),
                    ..ContainerState::default()
                });
            }
            PullState::Waiting { reason, message } => {
                status.state = Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.clone()),
                        message: Some(message.clone()),
                    }),
                    ..ContainerState::default()
                });
            }
            PullState::AlreadyRunning => {}
        }
        status
    }

    fn pod_status(&self, cluster: &Cluster, pod: &Pod, statuses: Vec<ContainerStatus>) -> PodStatus {
        let now = Time(cluster.clock().now());
        let previous = pod.status.clone().unwrap_or_default();
        let unready: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
        let ready = unready.is_empty();
        let unready_message = format!("containers with unready status: [{}]", unready.join(" "));
        let old = previous.conditions.clone().unwrap_or_default();
        let condition = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
            let status = if ok { "True" } else { "False" }.to_owned();
            let transition = old
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            PodCondition {
                type_: type_.to_owned(),
                status,
                reason: reason.map(str::to_owned),
                message,
                last_transition_time: Some(transition),
                ..PodCondition::default()
            }
        };
        let not_ready = (!ready).then_some("ContainersNotReady");
        let not_ready_message = (!ready).then(|| unready_message.clone());
        let mut conditions = vec![
            condition("PodReadyToStartContainers", true, None, None),
            condition("Initialized", true, None, None),
            condition("Ready", ready, not_ready, not_ready_message.clone()),
            condition("ContainersReady", ready, not_ready, not_ready_message),
        ];
        conditions.extend(old.iter().filter(|c| c.type_ == "PodScheduled").cloned());
        let host_ip = cluster
            .node(&self.config.node_name)
            .and_then(|n| n.status.as_ref())
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone());
        PodStatus {
            phase: Some(if ready { "Running" } else { "Pending" }.to_owned()),
            conditions: Some(conditions),
            host_ip: host_ip.clone(),
            host_ips: host_ip.map(|ip| vec![HostIP { ip }]),
            start_time: previous.start_time.or(Some(now)),
            container_statuses: Some(statuses),
            qos_class: previous.qos_class.or_else(|| Some("BestEffort".to_owned())),
            ..PodStatus::default()
        }
    }
}

/// A stable 64-hex-digit id (FNV-1a 64 over the seed, stretched).
fn pseudo_id(seed: &str) -> String {
    (0u8..4)
        .map(|round| {
            let hash = seed
                .bytes()
                .chain([round])
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
            format!("{hash:016x}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_durations() {
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(truncate_ms(Duration::from_micros(41_999)), Duration::from_millis(41));
        assert_eq!(pseudo_id("x").len(), 64);
    }
}
