//! A scenario's node: containerd (the pinned 2.x) in the node's network namespace with the VNet's
//! resolver, Debian's CNI plugins, a locally built pause image, and a real kubelet that joins
//! containerd's mount namespace, registers the Node with AKS's labels and provider id, and gets
//! ACR credentials from the upstream `acr-credential-provider`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pullproof_host_kube::{CredentialProvider, Kubelet, KubeletConfig};
use pullproof_host_net::Topology;
use pullproof_host_runtime::image::{ImageSpec, Program};
use pullproof_host_runtime::{Containerd, ContainerdConfig, DEFAULT_SANDBOX_IMAGE, Launcher};

use super::cluster::{APISERVER_IP, APISERVER_PORT, SCENARIO_KEY, SharedCluster};
use super::front::Front;
use crate::run::BackendError;

/// The kubelet's API port inside the node's namespace.
pub const KUBELET_PORT: u16 = 10250;
/// Pods' addresses on the node (the CNI bridge's range; the node has no other pods).
const POD_CIDR: &str = "10.244.0.0/24";
/// Where every kubelet serves its device-plugin registration socket and keeps its checkpoint:
/// a fixed path (not below `--root-dir`), so kubelets sharing a host would race for one socket
/// (`bind: address already in use` when two start at once). Each node gets its own, mounted
/// there in the node's mount namespace.
const DEVICE_PLUGIN_DIR: &str = "/var/lib/kubelet/device-plugins";

fn err(what: &str) -> impl FnOnce(String) -> BackendError + '_ {
    move |e| BackendError(format!("{what}: {e}"))
}

/// What a node is made of.
pub struct NodeSpec {
    /// The node's name (`aks-POOL-RUNID-vmss000000`).
    pub name: String,
    /// The scenario's namespace (the node's pin label and taint).
    pub scenario: String,
    /// The node pool.
    pub pool: String,
    /// The node's address in its VNet.
    pub ip: Ipv4Addr,
    /// `azure:///subscriptions/.../virtualMachines/0`.
    pub provider_id: Option<String>,
    /// The AKS node resource group (`kubernetes.azure.com/cluster`).
    pub node_resource_group: String,
    /// The node folder.
    pub dir: PathBuf,
    /// System CAs plus the world's CA (containerd's and the plugin's `SSL_CERT_FILE`).
    pub ca_bundle: PathBuf,
    /// The plugin's `azure.json`.
    pub azure_json: PathBuf,
    /// The VNets.
    pub topology: Arc<Topology>,
}

/// A running node. Stop it with [`Node::stop`] (dropping also stops every process).
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Its containerd.
    pub containerd: Arc<Containerd>,
    /// Its pool.
    pub pool: String,
    kubelet: Option<Kubelet>,
    fronts: Vec<Front>,
    /// The cloud config AKS gives the credential provider (`/etc/kubernetes/azure.json`).
    azure_json: PathBuf,
    /// A cloud config path the node does not have (inside its own folder, never created).
    missing_azure_json: PathBuf,
}

impl Node {
    /// Starts containerd, imports the pause image, opens the API server's address in the node's
    /// namespace and the kubelet's address to the API server, then starts the kubelet and waits
    /// for its Node to be Ready.
    pub async fn start(spec: NodeSpec, cluster: &SharedCluster) -> Result<Self, BackendError> {
        let c = &cluster.components;
        std::fs::create_dir_all(&spec.dir).map_err(|e| err("node folder")(e.to_string()))?;
        let node_ns = spec.topology.node();

        // The API server at an address of the world, and the kubelet reachable from it.
        node_ns
            .ip(&["addr", "add", &format!("{APISERVER_IP}/32"), "dev", "lo"])
            .map_err(|e| err("API server address")(e.to_string()))?;
        let listener = node_ns
            .bind_tcp(SocketAddr::new(APISERVER_IP.into(), APISERVER_PORT))
            .map_err(|e| err("API server listener")(e.to_string()))?;
        let mut fronts = vec![
            Front::tcp_forward(listener, cluster.control_plane().address(), None)
                .map_err(|e| err("API server front")(e.to_string()))?,
        ];
        let loopback = cluster.next_loopback();
        let kubelet_listener =
            std::net::TcpListener::bind((loopback, KUBELET_PORT)).map_err(|e| err("kubelet forward")(e.to_string()))?;
        let target = SocketAddr::new(spec.ip.into(), KUBELET_PORT);
        fronts.push(
            Front::tcp_forward(kubelet_listener, target, Some(spec.topology.clone()))
                .map_err(|e| err("kubelet forward")(e.to_string()))?,
        );
        cluster
            .control_plane()
            .kubelet_hosts()
            .insert(&spec.name, loopback)
            .map_err(|e| err("API server hosts")(e.to_string()))?;

        // containerd.
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "pullproof",
            "plugins": [
                { "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
                  "ipam": { "type": "host-local", "ranges": [[{ "subnet": POD_CIDR }]],
                            "dataDir": spec.dir.join("cni-ipam") } },
                { "type": "loopback" },
            ],
        });
        // The kubelet joins containerd's mount namespace: the node's own device-plugin directory
        // is bound there, over the host's (created if missing, so the bind has a target).
        let device_plugins = spec.dir.join("device-plugins");
        for dir in [device_plugins.as_path(), Path::new(DEVICE_PLUGIN_DIR)] {
            std::fs::create_dir_all(dir)
                .map_err(|e| err("device-plugin directory")(format!("{}: {e}", dir.display())))?;
        }
        let containerd = Containerd::start(ContainerdConfig {
            binary: c.containerd("containerd"),
            base_dir: Some(spec.dir.clone()),
            log_file: Some(spec.dir.join("containerd.log")),
            ssl_cert_file: Some(spec.ca_bundle.clone()),
            launcher: Launcher::in_netns(node_ns.path()).with_private_binds([
                (spec.topology.resolv_conf_path(), Path::new("/etc/resolv.conf")),
                (device_plugins.as_path(), Path::new(DEVICE_PLUGIN_DIR)),
            ]),
            cni_network: Some(conflist.to_string()),
            startup_timeout: Duration::from_secs(20),
            ..Default::default()
        })
        .await
        .map_err(|e| err("containerd")(e.to_string()))?;
        let pause = ImageSpec::new("pause", "local", &["linux/amd64"])
            .map_err(|e| err("pause image")(e.to_string()))?
            .with_program(Program::busybox(&["sleep", "2147483647"]).map_err(|e| err("pause image")(e.to_string()))?)
            .build()
            .map_err(|e| err("pause image")(e.to_string()))?;
        containerd
            .import_image(&pause.oci_archive(DEFAULT_SANDBOX_IMAGE), DEFAULT_SANDBOX_IMAGE)
            .await
            .map_err(|e| err("pause image")(e.to_string()))?;
        let containerd = Arc::new(containerd);

        // The kubelet, as the node's identity, in containerd's mount and network namespaces.
        let node_dir = spec.dir.join("kubelet");
        let kubeconfig = cluster
            .control_plane()
            .kubeconfig_for(
                &node_dir,
                "node",
                &format!("system:node:{}", spec.name),
                Some("system:nodes"),
                &format!("https://{APISERVER_IP}:{APISERVER_PORT}"),
                None,
            )
            .map_err(|e| err("node credentials")(e.to_string()))?;
        let mut labels = pullproof_host_kube::kubelet::aks_labels(&spec.pool, "system", &spec.node_resource_group);
        labels.insert(SCENARIO_KEY.to_string(), spec.scenario.clone());
        let launcher = Launcher::wrapped([
            "nsenter".to_string(),
            format!("--target={}", containerd.pid()),
            "--mount".into(),
            "--net".into(),
        ]);
        let kubelet = Kubelet::start(KubeletConfig {
            binary: c.kubelet(),
            kubectl: c.kubectl(),
            admin_kubeconfig: cluster.control_plane().admin_kubeconfig().to_path_buf(),
            node_name: spec.name.clone(),
            node_ip: spec.ip,
            provider_id: spec.provider_id.clone(),
            labels,
            taints: vec![format!("{SCENARIO_KEY}={}:NoSchedule", spec.scenario)],
            dir: node_dir,
            kubeconfig,
            ca_file: cluster.control_plane().ca_file().to_path_buf(),
            runtime_socket: containerd.socket().to_path_buf(),
            resolv_conf: spec.topology.resolv_conf_path().to_path_buf(),
            credential_provider: Some(CredentialProvider {
                bin_dir: c.credential_provider_dir(),
                azure_json: spec.azure_json.clone(),
                env: vec![("SSL_CERT_FILE".into(), spec.ca_bundle.display().to_string())],
                default_cache_duration: "10m".into(),
            }),
            launcher,
            port: KUBELET_PORT,
            startup_timeout: Duration::from_secs(60),
        })
        .await
        .map_err(|e| err("kubelet")(e.to_string()))?;
        if let Some(v) = super::cluster::node_versions(&cluster.admin, &spec.name).await {
            cluster.node_versions.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(v);
        }
        Ok(Self {
            name: spec.name,
            pool: spec.pool,
            containerd,
            kubelet: Some(kubelet),
            fronts,
            missing_azure_json: spec.dir.join("absent/etc/kubernetes/azure.json"),
            azure_json: spec.azure_json,
        })
    }

    /// The kubelet's log.
    pub fn kubelet_log(&self) -> Option<PathBuf> {
        self.kubelet.as_ref().map(Kubelet::log_path)
    }

    /// Whether the kubelet died.
    pub fn dead(&self) -> Option<String> {
        self.kubelet.as_ref().and_then(Kubelet::dead)
    }

    /// Points the credential provider's argument at the node's cloud config (`healthy`) or at
    /// one it does not have; the kubelet reads it at its next restart.
    pub fn set_credential_provider_cloud_config(&mut self, healthy: bool) {
        let path = if healthy { self.azure_json.clone() } else { self.missing_azure_json.clone() };
        if let Some(p) = self.kubelet.as_mut().and_then(Kubelet::credential_provider_mut) {
            p.azure_json = path;
        }
    }

    /// Restarts the kubelet, as a node reboot does: its credential cache and back-off are gone.
    pub async fn restart_kubelet(&mut self) -> Result<(), BackendError> {
        match &mut self.kubelet {
            Some(k) => k.restart().await.map_err(|e| err("kubelet restart")(e.to_string())),
            None => Ok(()),
        }
    }

    /// Removes every pod through CRI, stops the kubelet and containerd, and forgets the node.
    pub async fn stop(mut self, cluster: &SharedCluster) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(k) = self.kubelet.take() {
            let _ = tokio::task::spawn_blocking(move || k.stop()).await;
        }
        if let Err(e) = self.containerd.remove_all_pods().await {
            problems.push(format!("removing pods: {e}"));
        }
        self.fronts.clear();
        let _ = cluster.control_plane().kubelet_hosts().remove(&self.name);
        super::cluster::delete_node(&cluster.admin, &self.name).await;
        match Arc::try_unwrap(self.containerd) {
            Ok(c) => {
                if let Err(e) = tokio::task::spawn_blocking(move || c.stop())
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    problems.push(format!("containerd: {e}"));
                }
            }
            Err(_) => problems.push("containerd still in use".into()),
        }
        problems
    }
}

/// A Windows pool's pull, made the way a Windows node makes it: the upstream plugin for credentials, then containerd's
/// own resolver for `windows/amd64` (`ctr images pull --platform`).
pub async fn windows_pool_pull(
    containerd: &Containerd,
    plugin: &Path,
    azure_json: &Path,
    ca_bundle: &Path,
    image: &str,
) -> Result<(), String> {
    let request = serde_json::json!({
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": image,
    });
    let launcher = Launcher::wrapped([
        "nsenter".to_string(),
        format!("--target={}", containerd.pid()),
        "--mount".into(),
        "--net".into(),
    ]);
    let mut cmd: tokio::process::Command = launcher.command(plugin, [azure_json]).into();
    cmd.env("SSL_CERT_FILE", ca_bundle)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", plugin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(request.to_string().as_bytes()).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .map_err(|_| "the credential provider did not answer in 90 s".to_string())?
        .map_err(|e| e.to_string())?;
    let host = image.split('/').next().unwrap_or_default();
    let auth = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok().and_then(|v| {
        let entry = &v["auth"][host];
        let user = entry["username"].as_str()?.to_string();
        let pass = entry["password"].as_str()?.to_string();
        Some(pullproof_host_runtime::Auth::new(user, pass))
    });
    containerd
        .ctr_pull(image, Some("windows/amd64"), auth.as_ref())
        .await
        .map(|_| ())
        .map_err(|e| e.message().to_string())
}

/// Labels of a node pool, by name (for matching a pod's nodeSelector against the pools).
pub fn pool_labels(pool: &str, os: &str) -> BTreeMap<String, String> {
    [
        ("agentpool", pool),
        ("kubernetes.azure.com/agentpool", pool),
        ("kubernetes.io/os", os),
        ("kubernetes.io/arch", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
