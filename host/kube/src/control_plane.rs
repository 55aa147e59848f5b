//! One control plane per run: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
//! from the pinned release, on loopback, with the run's own PKI.
//!
//! Nodes reach the API server through an address of their world (see
//! [`ControlPlane::serving_addresses`]): the harness forwards that address from inside each node
//! namespace to the loopback port, so a registry network fault never cuts a kubelet off from its
//! API server, as on AKS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pullproof_host_runtime::components::Components;
use pullproof_host_runtime::{DaemonError, Launcher, ProcessGuard, unmount_below, wait_ready};

use crate::kubeconfig::Kubeconfig;
use crate::pki::{CertFiles, ClusterPki, PkiError};

/// The service CIDR AKS uses by default (kubenet and Azure CNI overlay).
pub const SERVICE_CIDR: &str = "10.0.0.0/16";
/// The cluster DNS address AKS uses by default.
pub const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
/// The first address of the service CIDR: the `kubernetes` Service.
const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Why the control plane did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// A binary is missing from the cache.
    #[error(transparent)]
    Missing(#[from] pullproof_host_runtime::components::Missing),
    /// Certificates.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A file or folder could not be prepared.
    #[error("control plane: {what}: {source}")]
    Io {
        /// What was being prepared.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A process failed to start or become ready.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlPlaneError {
    let what = what.into();
    move |source| ControlPlaneError::Io { what, source }
}

/// How to start the control plane.
#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    /// The pinned binaries.
    pub components: Components,
    /// The run's folder (PKI, etcd data, logs, kubeconfigs go below `DIR/control-plane`).
    pub dir: PathBuf,
    /// Addresses, besides loopback, at which nodes reach the API server (in its certificate).
    pub node_facing: Vec<IpAddr>,
    /// The cluster's DNS name for the API server (in its certificate), like AKS's
    /// `NAME-dns-ID.hcp.REGION.azmk8s.io`.
    pub fqdn: String,
    /// Start-up budget for each process.
    pub startup_timeout: Duration,
}

/// Names the API server resolves to reach kubelets (`/etc/hosts` in its own mount namespace):
/// each node's name maps to a loopback address the harness forwards into that node's namespace,
/// so `kubectl logs` and `cluster-info dump` reach real kubelets and no packet leaves the host.
#[derive(Debug)]
pub struct KubeletHosts {
    file: PathBuf,
    entries: std::sync::Mutex<std::collections::BTreeMap<String, Ipv4Addr>>,
}

impl KubeletHosts {
    fn create(file: PathBuf) -> std::io::Result<Self> {
        let hosts = Self { file, entries: Default::default() };
        hosts.write()?;
        Ok(hosts)
    }

    /// Maps `node` to `ip` (a loopback address).
    pub fn insert(&self, node: &str, ip: Ipv4Addr) -> std::io::Result<()> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(node.to_string(), ip);
        self.write()
    }

    /// Forgets `node`.
    pub fn remove(&self, node: &str) -> std::io::Result<()> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(node);
        self.write()
    }

    fn write(&self) -> std::io::Result<()> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::from("127.0.0.1 localhost\n");
        for (name, ip) in entries.iter() {
            text.push_str(&format!("{ip} {name}\n"));
        }
        // In place: the API server sees this file through a bind mount of this inode.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&self.file)?;
        f.write_all(text.as_bytes())
    }
}

/// A running control plane. Dropping it stops every process (scheduler, controller-manager, API
/// server, etcd, in that order) and removes its folder.
#[derive(Debug)]
pub struct ControlPlane {
    // Drop order: the last started stops first.
    scheduler: Option<ProcessGuard>,
    controller_manager: Option<ProcessGuard>,
    apiserver: Option<ProcessGuard>,
    etcd: Option<ProcessGuard>,
    pki: ClusterPki,
    dir: PathBuf,
    ca_file: PathBuf,
    port: u16,
    admin: PathBuf,
    startup: Duration,
    kubectl: PathBuf,
    hosts: KubeletHosts,
}

/// A free TCP port on loopback (bound and released; the window for a clash is tiny).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

impl ControlPlane {
    /// Generates the PKI, starts etcd, the API server, the controller-manager and the scheduler,
    /// and waits until the API server is ready (`/readyz`) and the default service account
    /// machinery runs.
    pub async fn start(config: ControlPlaneConfig) -> Result<Self, ControlPlaneError> {
        config.components.check()?;
        let started = Instant::now();
        let dir = config.dir.join("control-plane");
        let pki_dir = dir.join("pki");
        std::fs::create_dir_all(&pki_dir).map_err(io(format!("create {}", pki_dir.display())))?;
        // Keys, etcd data and the admin kubeconfig: the owner's alone.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(format!("chmod {}", dir.display())))?;
        }
        let pki = ClusterPki::generate()?;
        let ca_file = pki.write_ca(&pki_dir)?;
        let sa = pki.write_service_account_key(&pki_dir)?;
        let mut ips: Vec<IpAddr> = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(KUBERNETES_SERVICE_IP)];
        ips.extend(config.node_facing.iter().copied());
        let dns = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost", config.fqdn.as_str()];
        let serving = pki.server("kube-apiserver", &dns, &ips)?.write(&pki_dir, "apiserver")?;
        let kubelet_client = pki
            .client("kube-apiserver-kubelet-client", Some("system:masters"))?
            .write(&pki_dir, "apiserver-kubelet-client")?;

        let port = free_port().map_err(io("pick the API server port"))?;
        let server = format!("https://127.0.0.1:{port}");
        let kubeconfig = |user: &str, group: Option<&str>, file: &str| -> Result<PathBuf, ControlPlaneError> {
            let client = pki.client(user, group)?.write(&pki_dir, file)?;
            let path = dir.join(format!("{file}.kubeconfig"));
            Kubeconfig { server: server.clone(), ca_file: ca_file.clone(), client, namespace: None }
                .write(&path, "pullproof", user)
                .map_err(io(format!("write {}", path.display())))?;
            Ok(path)
        };
        let admin = kubeconfig("kubernetes-admin", Some("system:masters"), "admin")?;
        let cm_config = kubeconfig("system:kube-controller-manager", None, "controller-manager")?;
        let sched_config = kubeconfig("system:kube-scheduler", None, "scheduler")?;

        let hosts = KubeletHosts::create(dir.join("hosts")).map_err(io("write the API server's hosts file"))?;
        let mut cp = Self {
            scheduler: None,
            controller_manager: None,
            apiserver: None,
            etcd: None,
            pki,
            dir: dir.clone(),
            ca_file: ca_file.clone(),
            port,
            admin: admin.clone(),
            startup: Duration::ZERO,
            kubectl: config.components.kubectl(),
            hosts,
        };
        let c = &config.components;
        let launcher = Launcher::direct();
        let log = |name: &str| dir.join(format!("{name}.log"));

        // etcd: one member on loopback; fsync off (a run's state is thrown away at the end).
        let (client_port, peer_port) =
            (free_port().map_err(io("pick etcd's port"))?, free_port().map_err(io("pick etcd's peer port"))?);
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = launcher.command(
            c.etcd(),
            [
                "--name=pullproof".to_string(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=pullproof={peer_url}"),
                "--unsafe-no-fsync".into(),
                "--log-level=warn".into(),
            ],
        );
        etcd.current_dir(&dir);
        let etcd = ProcessGuard::spawn("etcd", &launcher, etcd, &log("etcd"))?;
        let health = format!("{client_url}/health");
        wait_ready(&etcd, &dir, config.startup_timeout, Duration::from_millis(50), || http_ok(health.clone())).await?;
        cp.etcd = Some(etcd);

        // The API server resolves node names through the run's hosts file (see [`KubeletHosts`]).
        let apiserver_launcher =
            Launcher::direct().with_private_binds([(dir.join("hosts"), PathBuf::from("/etc/hosts"))]);
        let mut apiserver = apiserver_launcher.command(
            c.kubernetes("kube-apiserver"),
            [
                format!("--etcd-servers={client_url}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={port}"),
                format!(
                    "--advertise-address={}",
                    config.node_facing.first().copied().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
                ),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--authorization-mode=Node,RBAC".into(),
                format!("--client-ca-file={}", ca_file.display()),
                format!("--tls-cert-file={}", serving.cert.display()),
                format!("--tls-private-key-file={}", serving.key.display()),
                format!("--kubelet-client-certificate={}", kubelet_client.cert.display()),
                format!("--kubelet-client-key={}", kubelet_client.key.display()),
                "--kubelet-preferred-address-types=Hostname".into(),
                format!("--service-account-key-file={}", sa.cert.display()),
                format!("--service-account-signing-key-file={}", sa.key.display()),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                "--allow-privileged=true".into(),
                // Nothing answers for the kubernetes Service's endpoints (no kube-proxy).
                "--endpoint-reconciler-type=none".into(),
                "--enable-priority-and-fairness=false".into(),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
        );
        apiserver.current_dir(&dir);
        let apiserver = ProcessGuard::spawn("kube-apiserver", &apiserver_launcher, apiserver, &log("kube-apiserver"))?;
        let kubectl = cp.kubectl.clone();
        wait_ready(&apiserver, &dir, config.startup_timeout, Duration::from_millis(200), || {
            let (kubectl, admin) = (kubectl.clone(), admin.clone());
            async move { kubectl_raw(&kubectl, &admin, "/readyz").await.map(|_| ()) }
        })
        .await?;
        cp.apiserver = Some(apiserver);

        let mut cm = launcher.command(
            c.kubernetes("kube-controller-manager"),
            [
                format!("--kubeconfig={}", cm_config.display()),
                // No HTTPS endpoint: nothing reads its metrics, and a port picked in advance can
                // be taken by an outgoing connection before the process binds it.
                "--secure-port=0".into(),
                "--leader-elect=false".into(),
                "--use-service-account-credentials=true".into(),
                format!("--root-ca-file={}", ca_file.display()),
                format!("--service-account-private-key-file={}", sa.key.display()),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
        );
        cm.current_dir(&dir);
        cp.controller_manager =
            Some(ProcessGuard::spawn("kube-controller-manager", &launcher, cm, &log("kube-controller-manager"))?);

        let mut sched = launcher.command(
            c.kubernetes("kube-scheduler"),
            [
                format!("--kubeconfig={}", sched_config.display()),
                "--secure-port=0".into(),
                "--leader-elect=false".into(),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
        );
        sched.current_dir(&dir);
        cp.scheduler = Some(ProcessGuard::spawn("kube-scheduler", &launcher, sched, &log("kube-scheduler"))?);
        cp.startup = started.elapsed();
        tracing::info!(port, startup_ms = cp.startup.as_millis() as u64, "control plane ready");
        Ok(cp)
    }

    /// The API server on loopback: `127.0.0.1:PORT`.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    /// How the API server finds kubelets.
    pub fn kubelet_hosts(&self) -> &KubeletHosts {
        &self.hosts
    }

    /// The admin kubeconfig (system:masters).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin
    }

    /// The cluster CA file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The cluster CA (PEM).
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The PKI, to issue more client certificates (one per kubelet, one per engine).
    pub fn pki(&self) -> &ClusterPki {
        &self.pki
    }

    /// Writes a kubeconfig for `user` in `groups`' first group, reaching the API server at
    /// `server`, into `dir/NAME.kubeconfig` (with its certificate beside it).
    pub fn kubeconfig_for(
        &self,
        dir: &Path,
        name: &str,
        user: &str,
        group: Option<&str>,
        server: &str,
        namespace: Option<&str>,
    ) -> Result<PathBuf, ControlPlaneError> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let client: CertFiles = self.pki.client(user, group)?.write(dir, name)?;
        // The cluster CA beside it: the kubeconfig's owner may not reach the control plane's
        // folder (an engine's unprivileged user cannot).
        let ca_file = dir.join(format!("{name}-ca.crt"));
        std::fs::copy(&self.ca_file, &ca_file).map_err(io(format!("copy the CA to {}", ca_file.display())))?;
        let path = dir.join(format!("{name}.kubeconfig"));
        Kubeconfig { server: server.to_string(), ca_file, client, namespace: namespace.map(str::to_string) }
            .write(&path, "pullproof", user)
            .map_err(io(format!("write {}", path.display())))?;
        Ok(path)
    }

    /// How long start-up took.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The folder holding the PKI, the logs and etcd's data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log files of the control plane's processes.
    pub fn logs(&self) -> Vec<PathBuf> {
        ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
            .iter()
            .map(|n| self.dir.join(format!("{n}.log")))
            .collect()
    }

    /// Whether a process died; its log and its last words (the last lines that are not klog's
    /// info lines, which end with a flag dump that hides the error).
    pub fn dead(&self) -> Option<(String, String)> {
        [&self.etcd, &self.apiserver, &self.controller_manager, &self.scheduler].into_iter().flatten().find_map(|g| {
            g.exited().map(|s| {
                let tail = g.log_tail(400);
                let words: Vec<&str> = tail.lines().filter(|l| !l.starts_with('I')).collect();
                let words = words[words.len().saturating_sub(10)..].join("\n");
                (format!("{} ({s})", g.log_path().display()), if words.is_empty() { g.log_tail(20) } else { words })
            })
        })
    }

    /// Stops every process (last started first) and removes the folder.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for g in [&mut self.scheduler, &mut self.controller_manager, &mut self.apiserver, &mut self.etcd] {
            if let Some(mut p) = g.take()
                && let Err(e) = p.stop()
            {
                tracing::warn!(error = %e, "stopping a control-plane process failed");
            }
        }
        unmount_below(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// `kubectl get --raw PATH` with `kubeconfig`: the body, or kubectl's error text.
pub async fn kubectl_raw(kubectl: &Path, kubeconfig: &Path, path: &str) -> Result<String, String> {
    let out = tokio::process::Command::new(kubectl)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["get", "--raw", path, "--request-timeout=2s"])
        .env_remove("KUBECONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{}: {e}", kubectl.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// A plain-HTTP GET on loopback answered 200 (etcd's `/health`).
async fn http_ok(url: String) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (hostport, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = tokio::net::TcpStream::connect(hostport).await.map_err(|e| e.to_string())?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&buf);
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(head.lines().next().unwrap_or("no answer").to_string())
    }
}
