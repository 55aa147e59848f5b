//! The run's Kubernetes cluster: one real control plane shared by every scenario of a run, each
//! scenario in its own namespace with its own node. Everything here goes through the real API
//! server (kube-rs as the admin, or kubectl); nothing about Kubernetes is written by hand.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use pullproof_host_kube::{ControlPlane, ControlPlaneConfig};
use pullproof_host_runtime::components::Components;
use serde_json::{Value, json};

use crate::run::BackendError;

/// Where nodes reach the API server, inside their own network namespace (as AKS nodes reach
/// `NAME-dns-ID.hcp.REGION.azmk8s.io` at a public address).
pub const APISERVER_IP: Ipv4Addr = Ipv4Addr::new(20, 62, 0, 1);
/// The API server's port as nodes see it.
pub const APISERVER_PORT: u16 = 443;
/// The label and taint that pin a scenario's workload to the scenario's node.
pub const SCENARIO_KEY: &str = "pullproof.io/scenario";
/// The field manager of the harness's server-side applies.
const MANAGER: &str = "pullproof";
/// The user engines act as (read-only: the scenario's namespace and the nodes).
pub const ENGINE_USER: &str = "pullproof-engine";

fn kerr(what: &str) -> impl FnOnce(kube::Error) -> BackendError + '_ {
    move |e| BackendError(format!("{what}: {e}"))
}

/// The run's control plane and an admin client for it.
pub struct SharedCluster {
    control_plane: ControlPlane,
    /// An admin client (system:masters).
    pub admin: kube::Client,
    /// The pinned binaries.
    pub components: Components,
    next_loopback: AtomicU32,
    /// The API server's `/version` `gitVersion`, as it reports it.
    pub server_version: String,
    /// A node's `kubeletVersion` and `containerRuntimeVersion`, as the first Ready node reported them.
    pub node_versions: std::sync::Mutex<Option<(String, String)>>,
}

impl std::fmt::Debug for SharedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCluster").field("server_version", &self.server_version).finish_non_exhaustive()
    }
}

impl SharedCluster {
    /// Starts the control plane in `run_dir` and grants engines read access to nodes.
    pub async fn start(components: Components, run_dir: &Path) -> Result<Self, BackendError> {
        let config = ControlPlaneConfig {
            components: components.clone(),
            dir: run_dir.to_path_buf(),
            node_facing: vec![APISERVER_IP.into()],
            fqdn: "pullproof-dns-00000000.hcp.eastus.azmk8s.io".into(),
            startup_timeout: Duration::from_secs(60),
        };
        // Ports are picked free just before etcd and the API server bind them; an outgoing
        // connection can take one in between. One more try, with fresh ports, absorbs that.
        let control_plane = match ControlPlane::start(config.clone()).await {
            Ok(cp) => cp,
            Err(first) => {
                tracing::warn!(error = %first, "the control plane did not start; trying once more");
                ControlPlane::start(config).await.map_err(|e| BackendError(format!("control plane: {e}")))?
            }
        };
        let admin = client(control_plane.admin_kubeconfig()).await?;
        let version = admin.apiserver_version().await.map_err(kerr("API server /version"))?;
        let cluster = Self {
            control_plane,
            admin,
            components,
            next_loopback: AtomicU32::new(1),
            server_version: version.git_version,
            node_versions: Default::default(),
        };
        cluster
            .apply_json(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                json!({
                    "metadata": { "name": ENGINE_USER },
                    "rules": [{ "apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"] }],
                }),
            )
            .await?;
        Ok(cluster)
    }

    /// The control plane.
    pub fn control_plane(&self) -> &ControlPlane {
        &self.control_plane
    }

    /// A fresh loopback address for a node's kubelet forward (`127.77.X.Y`).
    pub fn next_loopback(&self) -> Ipv4Addr {
        let n = self.next_loopback.fetch_add(1, Ordering::Relaxed);
        Ipv4Addr::new(127, 77, ((n >> 8) & 0xff) as u8, (n & 0xff) as u8)
    }

    /// Server-side apply of one object given as JSON (`metadata.name` inside `body`).
    pub async fn apply_json(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        mut body: Value,
    ) -> Result<(), BackendError> {
        body["apiVersion"] = json!(api_version);
        body["kind"] = json!(kind);
        let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
        if let Some(ns) = namespace {
            body["metadata"]["namespace"] = json!(ns);
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let plural = match kind {
            "ClusterRole" => "clusterroles",
            "ClusterRoleBinding" => "clusterrolebindings",
            "RoleBinding" => "rolebindings",
            other => return Err(BackendError(format!("apply_json: no plural known for {other}"))),
        };
        let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<kube::api::DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.admin.clone(), ns, &ar),
            None => Api::all_with(self.admin.clone(), &ar),
        };
        let obj: kube::api::DynamicObject =
            serde_json::from_value(body).map_err(|e| BackendError(format!("{kind} {name}: {e}")))?;
        api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&obj))
            .await
            .map_err(kerr(&format!("apply {kind} {name}")))?;
        Ok(())
    }
}

/// A kube client from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client, BackendError> {
    pullproof_emulator::tls::install_default_crypto_provider();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| BackendError(format!("kubeconfig {}: {e}", kubeconfig.display())))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| BackendError(format!("kubeconfig {}: {e}", kubeconfig.display())))?;
    kube::Client::try_from(config).map_err(|e| BackendError(format!("kube client: {e}")))
}

/// One scenario's share of the cluster: its namespace, workload, pull secret and engine access.
#[derive(Clone)]
pub struct Scenario {
    /// The admin client.
    pub admin: kube::Client,
    /// The namespace.
    pub namespace: String,
    /// The Deployment.
    pub deployment: String,
}

impl Scenario {
    /// Creates the namespace and the engine's read-only access to it.
    pub async fn create(cluster: &SharedCluster, namespace: &str, deployment: &str) -> Result<Self, BackendError> {
        let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.admin.clone());
        let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace } });
        ns.patch(namespace, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
            .await
            .map_err(kerr("create the namespace"))?;
        let user = engine_user(namespace);
        let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(cluster.admin.clone(), namespace);
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": { "name": ENGINE_USER, "namespace": namespace },
            "rules": [
                { "apiGroups": [""], "resources": ["pods", "pods/log", "events", "secrets", "serviceaccounts", "services", "replicationcontrollers"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": ["apps"], "resources": ["deployments", "replicasets", "daemonsets", "statefulsets"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"] },
            ],
        });
        roles
            .patch(ENGINE_USER, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&role))
            .await
            .map_err(kerr("create the engine's Role"))?;
        let subject = json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }]);
        cluster
            .apply_json(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                Some(namespace),
                json!({ "metadata": { "name": ENGINE_USER }, "subjects": subject,
                        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ENGINE_USER } }),
            )
            .await?;
        cluster
            .apply_json(
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                None,
                json!({ "metadata": { "name": format!("{ENGINE_USER}-{namespace}") }, "subjects": subject,
                        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ENGINE_USER } }),
            )
            .await?;
        Ok(Self { admin: cluster.admin.clone(), namespace: namespace.to_string(), deployment: deployment.to_string() })
    }

    /// Creates or replaces a `kubernetes.io/dockerconfigjson` pull secret for `server`.
    pub async fn put_pull_secret(
        &self,
        name: &str,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<(), BackendError> {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = json!({ "auths": { server: {
            "username": user, "password": password, "auth": b64(&format!("{user}:{password}")),
        }}});
        let body = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": name, "namespace": self.namespace },
            "type": "kubernetes.io/dockerconfigjson",
            "data": { ".dockerconfigjson": b64(&config.to_string()) },
        });
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(self.admin.clone(), &self.namespace);
        api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
            .await
            .map_err(kerr("write the pull secret"))?;
        Ok(())
    }

    /// Deletes a secret of the scenario's namespace; one already gone is fine.
    pub async fn delete_secret(&self, name: &str) -> Result<(), BackendError> {
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(self.admin.clone(), &self.namespace);
        match api.delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(kerr("delete the pull secret")(e)),
        }
    }

    /// Creates the workload: a Deployment of one replica pinned to the scenario's node (a node
    /// affinity and a toleration of the node's taint), pulling on every start (`Always`), with
    /// the baseline's nodeSelector and pull secret.
    pub async fn create_workload(
        &self,
        container: &str,
        image: &str,
        node_selector: &BTreeMap<String, String>,
        pull_secret: Option<&str>,
    ) -> Result<(), BackendError> {
        let labels = json!({ "app": self.deployment });
        let mut pod_spec = json!({
            "nodeSelector": node_selector,
            "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                { "matchExpressions": [{ "key": SCENARIO_KEY, "operator": "In", "values": [self.namespace] }] }
            ]}}},
            "tolerations": [{ "key": SCENARIO_KEY, "operator": "Equal", "value": self.namespace, "effect": "NoSchedule" }],
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "containers": [{ "name": container, "image": image, "imagePullPolicy": "Always" }],
        });
        if let Some(s) = pull_secret {
            pod_spec["imagePullSecrets"] = json!([{ "name": s }]);
        }
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": self.deployment, "namespace": self.namespace, "labels": labels },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": labels },
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
                "template": { "metadata": { "labels": labels }, "spec": pod_spec },
            },
        });
        self.deployments()
            .patch(&self.deployment, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
            .await
            .map_err(kerr("create the workload"))?;
        Ok(())
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.admin.clone(), &self.namespace)
    }

    /// Sets the container's image (a strategic merge patch, as `kubectl set image` sends).
    pub async fn set_image(&self, container: &str, image: &str) -> Result<(), BackendError> {
        let patch =
            json!({ "spec": { "template": { "spec": { "containers": [{ "name": container, "image": image }] } } } });
        self.deployments()
            .patch(&self.deployment, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(kerr("set the image"))?;
        Ok(())
    }

    /// Replaces the pod template's nodeSelector.
    pub async fn set_node_selector(&self, selector: &BTreeMap<String, String>) -> Result<(), BackendError> {
        let current = self.deployments().get(&self.deployment).await.map_err(kerr("read the workload"))?;
        let mut patch_selector: serde_json::Map<String, Value> = current
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.node_selector)
            .unwrap_or_default()
            .into_keys()
            .map(|k| (k, Value::Null))
            .collect();
        for (k, v) in selector {
            patch_selector.insert(k.clone(), json!(v));
        }
        let patch = json!({ "spec": { "template": { "spec": { "nodeSelector": patch_selector } } } });
        self.deployments()
            .patch(&self.deployment, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kerr("set the nodeSelector"))?;
        Ok(())
    }

    /// `kubectl rollout restart`: a new pod, which pulls its image again.
    pub async fn rollout_restart(&self) -> Result<(), BackendError> {
        let now =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
            "kubectl.kubernetes.io/restartedAt": now,
        }}}}});
        self.deployments()
            .patch(&self.deployment, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kerr("rollout restart"))?;
        Ok(())
    }

    /// The workload's newest pod that is not being deleted.
    pub async fn newest_pod(&self) -> Result<Option<Pod>, BackendError> {
        let pods: Api<Pod> = Api::namespaced(self.admin.clone(), &self.namespace);
        let list = pods
            .list(&ListParams::default().labels(&format!("app={}", self.deployment)))
            .await
            .map_err(kerr("list the workload's pods"))?;
        Ok(list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .max_by(|a, b| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp)))
    }

    /// The newest `Failed` event the kubelet recorded for `pod` (`Failed to pull image "IMG": ERR`).
    pub async fn kubelet_failure(&self, pod: &str) -> Result<Option<String>, BackendError> {
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.admin.clone(), &self.namespace);
        let list = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={pod},reason=Failed")))
            .await
            .map_err(kerr("list the pod's events"))?;
        Ok(list
            .items
            .into_iter()
            .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("kubelet"))
            .filter(|e| e.message.as_deref().is_some_and(|m| m.starts_with("Failed to pull image")))
            .max_by(|a, b| {
                let t = |e: &k8s_openapi::api::core::v1::Event| {
                    e.last_timestamp.clone().or(e.first_timestamp.clone()).map(|t| t.0)
                };
                t(a).cmp(&t(b))
            })
            .and_then(|e| e.message))
    }

    /// Deletes the namespace (everything in it goes with it) and the engine's cluster binding.
    pub async fn delete(&self) {
        let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.admin.clone());
        let _ = ns.delete(&self.namespace, &DeleteParams::background()).await;
        let crb: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(self.admin.clone());
        let _ = crb.delete(&format!("{ENGINE_USER}-{}", self.namespace), &DeleteParams::default()).await;
    }
}

/// The engine's user for one namespace.
pub fn engine_user(namespace: &str) -> String {
    format!("{ENGINE_USER}:{namespace}")
}

/// Deletes a Node object (its kubelet is gone).
pub async fn delete_node(admin: &kube::Client, name: &str) {
    let nodes: Api<Node> = Api::all(admin.clone());
    let _ = nodes.delete(name, &DeleteParams::default()).await;
}

/// The node's kubelet and container runtime versions, as the node reports them
/// (`status.nodeInfo`: `v1.35.4`, `containerd://2.1.5`).
pub async fn node_versions(admin: &kube::Client, name: &str) -> Option<(String, String)> {
    let nodes: Api<Node> = Api::all(admin.clone());
    nodes.get(name).await.ok()?.status?.node_info.map(|i| (i.kubelet_version, i.container_runtime_version))
}

/// A real `kubectl cluster-info dump` of `namespace` into `dir`, plus the namespace's secrets
/// and service accounts (`NS/secrets.json`, `NS/serviceaccounts.json`): the engine contract's
/// dump directory.
pub async fn dump(kubectl: &Path, kubeconfig: &Path, namespace: &str, dir: &Path) -> Result<(), BackendError> {
    let _ = std::fs::remove_dir_all(dir);
    let run = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(kubectl);
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        cmd
    };
    let out = run(vec![
        "cluster-info".into(),
        "dump".into(),
        format!("--namespaces={namespace}"),
        format!("--output-directory={}", dir.display()),
        "--request-timeout=10s".into(),
    ])
    .output()
    .await
    .map_err(|e| BackendError(format!("kubectl cluster-info dump: {e}")))?;
    if !out.status.success() {
        return Err(BackendError(format!(
            "kubectl cluster-info dump: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    for kind in ["secrets", "serviceaccounts"] {
        let out = run(vec!["get".into(), kind.into(), "-n".into(), namespace.into(), "-o".into(), "json".into()])
            .output()
            .await
            .map_err(|e| BackendError(format!("kubectl get {kind}: {e}")))?;
        if !out.status.success() {
            return Err(BackendError(format!("kubectl get {kind}: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        let path: PathBuf = dir.join(namespace).join(format!("{kind}.json"));
        std::fs::create_dir_all(dir.join(namespace)).map_err(|e| BackendError(format!("dump: {e}")))?;
        std::fs::write(&path, &out.stdout).map_err(|e| BackendError(format!("dump {}: {e}", path.display())))?;
    }
    Ok(())
}
