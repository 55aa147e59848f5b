//! A real kubelet: the pinned release's binary, one per node, registering its own Node with the
//! labels and provider id AKS gives its nodes, talking CRI to the node's containerd, and getting
//! registry credentials from the upstream `acr-credential-provider` through a real
//! `CredentialProviderConfig`.
//!
//! The kubelet runs in its node's network namespace and in the same mount namespace as the node's
//! containerd (so the volumes it mounts are the ones containerd's containers see, and the plugin it
//! executes resolves names with the node's resolver), never in a namespace of its own: it needs
//! the host's `/sys` and cgroups.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pullproof_host_runtime::{DaemonError, Launcher, ProcessGuard, unmount_below, wait_ready};
use serde_json::json;

use crate::control_plane::{CLUSTER_DNS, kubectl_raw};

/// The plugin's name (the file name the kubelet executes from its bin dir).
pub const ACR_PROVIDER: &str = "acr-credential-provider";

/// Why a kubelet did not come up.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// A file could not be written.
    #[error("kubelet {node}: {what}: {source}")]
    Io {
        /// The node.
        node: String,
        /// What was being written.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The process failed to start or its node never became Ready.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// The `CredentialProviderConfig` AKS writes for the ACR plugin (kubelet.config.k8s.io/v1).
#[derive(Debug, Clone)]
pub struct CredentialProvider {
    /// The folder holding the `acr-credential-provider` binary.
    pub bin_dir: PathBuf,
    /// The plugin's config file (`azure.json`), its only argument.
    pub azure_json: PathBuf,
    /// Environment for the plugin (e.g. `SSL_CERT_FILE` to trust the world's CA).
    pub env: Vec<(String, String)>,
    /// `defaultCacheDuration`. The plugin answers with its own `cacheDuration` (5 minutes),
    /// which the kubelet prefers; this one applies only when the plugin gives none.
    pub default_cache_duration: String,
}

impl CredentialProvider {
    /// The config document, with AKS's `matchImages` (the four ACR clouds).
    pub fn render(&self) -> String {
        let env: Vec<_> = self.env.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
        serde_json::to_string_pretty(&json!({
            "apiVersion": "kubelet.config.k8s.io/v1",
            "kind": "CredentialProviderConfig",
            "providers": [{
                "name": ACR_PROVIDER,
                "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
                "matchImages": ["*.azurecr.io", "*.azurecr.cn", "*.azurecr.de", "*.azurecr.us"],
                "defaultCacheDuration": self.default_cache_duration,
                "args": [self.azure_json],
                "env": env,
            }],
        }))
        .unwrap_or_default()
    }
}

/// How to start one kubelet.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The kubelet binary.
    pub binary: PathBuf,
    /// kubectl (to watch the Node become Ready).
    pub kubectl: PathBuf,
    /// An admin kubeconfig for that watch.
    pub admin_kubeconfig: PathBuf,
    /// The node's name (`--hostname-override`).
    pub node_name: String,
    /// The node's address in its VNet (`--node-ip`, the kubelet's serving address).
    pub node_ip: Ipv4Addr,
    /// `azure:///subscriptions/.../virtualMachineScaleSets/.../virtualMachines/N`.
    pub provider_id: Option<String>,
    /// Node labels (AKS's agentpool, mode, ...); `kubernetes.io/os` and `arch` are the kubelet's own.
    pub labels: BTreeMap<String, String>,
    /// Taints the Node registers with (`KEY=VALUE:EFFECT`).
    pub taints: Vec<String>,
    /// The node's folder: config, root dir, certificates, log.
    pub dir: PathBuf,
    /// The node's kubeconfig (its own client certificate, `system:node:NAME`).
    pub kubeconfig: PathBuf,
    /// The cluster CA (client certificates presented to the kubelet's own API).
    pub ca_file: PathBuf,
    /// The node's containerd socket.
    pub runtime_socket: PathBuf,
    /// The `resolv.conf` pods get (the node's).
    pub resolv_conf: PathBuf,
    /// The image credential provider, if the node has one.
    pub credential_provider: Option<CredentialProvider>,
    /// Where the kubelet runs (the node's network namespace and containerd's mount namespace).
    pub launcher: Launcher,
    /// The kubelet's API port.
    pub port: u16,
    /// Start-up budget: until the Node is Ready.
    pub startup_timeout: Duration,
}

/// A running kubelet. Dropping it stops the process; pods it started stay with the runtime
/// (remove them through CRI before the runtime goes).
#[derive(Debug)]
pub struct Kubelet {
    process: Option<ProcessGuard>,
    config: KubeletConfig,
    startup: Duration,
}

impl Kubelet {
    /// Writes the configuration, starts the kubelet and waits until its Node is Ready.
    pub async fn start(config: KubeletConfig) -> Result<Self, KubeletError> {
        let started = Instant::now();
        let io = |what: &str| {
            let (node, what) = (config.node_name.clone(), what.to_string());
            move |source| KubeletError::Io { node, what, source }
        };
        let root = config.dir.join("root");
        let certs = config.dir.join("pki");
        for d in [&root, &certs] {
            std::fs::create_dir_all(d).map_err(io("create folders"))?;
        }
        let kubelet_config = config.dir.join("kubelet.json");
        std::fs::write(&kubelet_config, render_config(&config)).map_err(io("write kubelet.json"))?;
        let mut args = vec![
            format!("--config={}", kubelet_config.display()),
            format!("--kubeconfig={}", config.kubeconfig.display()),
            format!("--hostname-override={}", config.node_name),
            format!("--node-ip={}", config.node_ip),
            format!("--root-dir={}", root.display()),
            format!("--cert-dir={}", certs.display()),
            "--v=2".into(),
        ];
        if !config.labels.is_empty() {
            let labels: Vec<String> = config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            args.push(format!("--node-labels={}", labels.join(",")));
        }
        if let Some(p) = &config.credential_provider {
            let file = config.dir.join("credential-provider.json");
            std::fs::write(&file, p.render()).map_err(io("write credential-provider.json"))?;
            args.push(format!("--image-credential-provider-config={}", file.display()));
            args.push(format!("--image-credential-provider-bin-dir={}", p.bin_dir.display()));
        }
        let mut cmd = config.launcher.command(&config.binary, args);
        cmd.current_dir(&config.dir);
        let log = config.dir.join("kubelet.log");
        let process = ProcessGuard::spawn("kubelet", &config.launcher, cmd, &log)?;
        let (kubectl, admin) = (config.kubectl.clone(), config.admin_kubeconfig.clone());
        let path = format!("/api/v1/nodes/{}", config.node_name);
        wait_ready(&process, &config.dir, config.startup_timeout, Duration::from_millis(250), || {
            let (kubectl, admin, path) = (kubectl.clone(), admin.clone(), path.clone());
            async move {
                let body = kubectl_raw(&kubectl, &admin, &path).await?;
                if node_ready(&body) { Ok(()) } else { Err("the Node is not Ready yet".to_string()) }
            }
        })
        .await?;
        let startup = started.elapsed();
        tracing::info!(node = %config.node_name, startup_ms = startup.as_millis() as u64, "kubelet ready");
        Ok(Self { process: Some(process), config, startup })
    }

    /// The node's name.
    pub fn node_name(&self) -> &str {
        &self.config.node_name
    }

    /// How long it took until the Node was Ready.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The kubelet's log file.
    pub fn log_path(&self) -> PathBuf {
        self.config.dir.join("kubelet.log")
    }

    /// Whether the process died, and the tail of its log.
    pub fn dead(&self) -> Option<String> {
        let p = self.process.as_ref()?;
        p.exited().map(|s| format!("kubelet exited ({s}):\n{}", p.log_tail(20)))
    }

    /// The credential provider the next [`Kubelet::restart`] configures (the kubelet reads its
    /// config only at start).
    pub fn credential_provider_mut(&mut self) -> Option<&mut CredentialProvider> {
        self.config.credential_provider.as_mut()
    }

    /// Restarts the process with the same configuration, as a node reboot does: the kubelet's
    /// in-memory state (credential cache, back-off) is gone; pods and images stay.
    pub async fn restart(&mut self) -> Result<(), KubeletError> {
        if let Some(mut p) = self.process.take() {
            p.stop()?;
        }
        let fresh = Self::start(self.config.clone()).await?;
        *self = fresh;
        Ok(())
    }

    /// Stops the process and detaches what it mounted below its folder.
    pub fn stop(mut self) -> Result<(), KubeletError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), KubeletError> {
        if let Some(mut p) = self.process.take() {
            p.stop()?;
        }
        unmount_below(&self.config.dir);
        Ok(())
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::warn!(error = %e, "stopping the kubelet failed");
        }
    }
}

/// Whether a Node JSON body has condition `Ready=True`.
pub fn node_ready(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body).ok().is_some_and(|v| {
        v["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    })
}

/// The `KubeletConfiguration` for these machines: cgroup v1 with the cgroupfs driver, no swap
/// check, no per-QoS cgroups (several kubelets share one host; each would otherwise claim the
/// `kubepods` hierarchy and remove the others' pods), no eviction on a busy disk.
fn render_config(c: &KubeletConfig) -> String {
    let mut v = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": false,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": false,
        "enforceNodeAllocatable": [],
        "containerRuntimeEndpoint": format!("unix://{}", c.runtime_socket.display()),
        "failSwapOn": false,
        "address": c.node_ip.to_string(),
        "port": c.port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 0,
        "authentication": {
            "x509": { "clientCAFile": c.ca_file },
            "webhook": { "enabled": false },
            "anonymous": { "enabled": false },
        },
        "authorization": { "mode": "AlwaysAllow" },
        "clusterDNS": [CLUSTER_DNS.to_string()],
        "clusterDomain": "cluster.local",
        "resolvConf": c.resolv_conf,
        "registerNode": true,
        "serializeImagePulls": true,
        "evictionHard": { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "maxPods": 20,
        "podLogsDir": c.dir.join("pod-logs"),
        "rotateCertificates": false,
        "serverTLSBootstrap": false,
    });
    if let Some(id) = &c.provider_id {
        v["providerID"] = json!(id);
    }
    let taints: Vec<_> = c
        .taints
        .iter()
        .filter_map(|t| {
            let (kv, effect) = t.rsplit_once(':')?;
            let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
            Some(json!({ "key": key, "value": value, "effect": effect }))
        })
        .collect();
    if !taints.is_empty() {
        v["registerWithTaints"] = json!(taints);
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// The labels AKS puts on a node of `pool` (besides the kubelet's own `kubernetes.io/os`).
pub fn aks_labels(pool: &str, mode: &str, cluster_resource_group: &str) -> BTreeMap<String, String> {
    [
        ("agentpool", pool),
        ("kubernetes.azure.com/agentpool", pool),
        ("kubernetes.azure.com/mode", mode),
        ("kubernetes.azure.com/cluster", cluster_resource_group),
        ("kubernetes.azure.com/role", "agent"),
        ("node.kubernetes.io/instance-type", "Standard_D2s_v5"),
        ("topology.kubernetes.io/region", "eastus"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The path of a node's folder in a run's folder.
pub fn node_dir(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join("nodes").join(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_config_is_what_aks_writes() {
        let p = CredentialProvider {
            bin_dir: "/cache/bin".into(),
            azure_json: "/run/azure.json".into(),
            env: vec![("SSL_CERT_FILE".into(), "/run/ca.pem".into())],
            default_cache_duration: "10m".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&p.render()).unwrap();
        let provider = &v["providers"][0];
        assert_eq!(provider["name"], ACR_PROVIDER);
        assert_eq!(provider["args"][0], "/run/azure.json");
        assert_eq!(provider["matchImages"].as_array().unwrap().len(), 4);
        assert_eq!(provider["env"][0]["name"], "SSL_CERT_FILE");
    }

    #[test]
    fn readiness_reads_the_ready_condition() {
        assert!(node_ready(r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#));
        assert!(!node_ready(r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#));
        assert!(!node_ready("not json"));
    }
}
