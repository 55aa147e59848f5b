//! The host backend: every scenario for real on one Linux machine (root), no Docker.
//!
//! - **Kubernetes**: one real control plane per run ([`cluster`]: etcd, kube-apiserver,
//!   kube-controller-manager, kube-scheduler from the pinned release), each scenario in its own
//!   namespace with its own node ([`node`]: a real kubelet, containerd 2.x, Debian's CNI plugins,
//!   AKS's own `acr-credential-provider`).
//! - **Azure**: a private [`pullproof_emulator`] on loopback per scenario, provisioned from the
//!   baseline with ordinary ARM and Graph calls ([`crate::arm`]).
//! - **VNets**: network namespaces ([`pullproof_host_net`]): the node, a router whose nftables
//!   rules follow peerings, NSGs and routes, and the registry's private and public endpoints;
//!   a DNS responder at 168.63.129.16 in the node answering from the linked private zones.
//! - **Registry**: the real distribution registry ([`pullproof_host_runtime::Registry`]) with
//!   token auth from the emulator, behind a [`front`] that serves the login server name inside
//!   the namespaces and applies ACR's firewall.
//!
//! Every fault is a control-plane change; the data plane follows through the emulator's change
//! feed ([`realise`]). Every pull error, event, waiting reason and back-off comes from containerd
//! and the kubelet themselves.

pub mod cluster;
pub mod front;
pub mod lease;
pub mod node;
pub mod realise;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_rest::{ARM_SCOPE, Client, ClientCredentials, GRAPH_SCOPE};
use pullproof_emulator::{DataPlane, Emulator, EmulatorConfig, RunningEmulator};
use pullproof_host_net::{DnsServer, Topology};
use pullproof_host_runtime::components::Components;
use pullproof_host_runtime::image::Program;
use pullproof_host_runtime::{Launcher, ProcessGuard, Registry, RegistryAuth, RegistryConfig};
use serde_json::json;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use self::cluster::{Scenario, SharedCluster};
use self::front::{Endpoint, Front};
use self::node::{Node, NodeSpec};
use self::realise::{NodePlacement, PUBLIC_REGISTRY_IP};
use crate::arm::mutation::{ClusterOp, EmulatorOp, NodeOp, Realisation, realise as realise_mutation};
use crate::arm::{Executor, Request, World};
use crate::baseline::{Baseline, ClusterIdentity, OsType, PullSecretSource};
use crate::catalog::Entry;
use crate::run::{Backend, BackendError, EngineInput, Health};
use crate::scenario::{BackendKind, Mutation};

/// The AcrPush role: the harness's operator holds it only while pushing the baseline's images.
const ACR_PUSH: &str = azure_model::authorization::ACR_PUSH.id;

/// Host backend settings.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The pinned Kubernetes, etcd, containerd and `acr-credential-provider` binaries.
    pub components: Components,
    /// Where each run's files go (a `pullproof-RUNID` folder is made inside).
    pub work_dir: PathBuf,
    /// The unprivileged user external engines run as, in a directory of their own; `None`: as
    /// the harness's own user. Default: `nobody`, where it exists.
    pub engine_user: Option<EngineUser>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            components: Components::pinned(),
            work_dir: std::env::temp_dir(),
            engine_user: EngineUser::lookup("nobody"),
        }
    }
}

/// A local user an engine runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineUser {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

impl EngineUser {
    /// The user called `name`, if the system knows it.
    pub fn lookup(name: &str) -> Option<Self> {
        let name = std::ffi::CString::new(name).ok()?;
        // SAFETY: getpwnam reads the password database and returns a pointer to static storage
        // (or null); it is read at once, before any other call could reuse it.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if pw.is_null() {
            return None;
        }
        // SAFETY: non-null, per getpwnam's contract it points to a valid passwd record.
        let pw = unsafe { &*pw };
        (pw.pw_uid != 0).then_some(Self { uid: pw.pw_uid, gid: pw.pw_gid })
    }

    /// Whether this user can walk to `path` (every folder on the way searchable by it): an
    /// engine kept in a home it cannot enter could not even start.
    pub fn can_reach(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        path.ancestors().all(|dir| {
            let Ok(m) = std::fs::metadata(dir) else { return false };
            if !m.is_dir() {
                return true;
            }
            let bit = if m.uid() == self.uid {
                0o100
            } else if m.gid() == self.gid {
                0o010
            } else {
                0o001
            };
            m.mode() & bit != 0
        })
    }
}

/// Sets `path`'s mode.
fn chmod(path: &Path, mode: u32) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BackendError::new(format!("chmod {}: {e}", path.display())))
}

/// Gives `dir` and everything in it to `user`.
fn chown_tree(dir: &Path, user: EngineUser) -> Result<(), BackendError> {
    let fail = |e: std::io::Error| BackendError::new(format!("chown {}: {e}", dir.display()));
    std::os::unix::fs::lchown(dir, Some(user.uid), Some(user.gid)).map_err(fail)?;
    if dir.is_dir() && !dir.is_symlink() {
        for entry in std::fs::read_dir(dir).map_err(fail)? {
            chown_tree(&entry.map_err(fail)?.path(), user)?;
        }
    }
    Ok(())
}

/// Why the host backend cannot run here, if it cannot.
pub fn preflight(options: &HostOptions) -> Result<(), BackendError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(BackendError::new(
            "the host backend needs root (network namespaces, containerd, kubelet): run with sudo",
        ));
    }
    // dnsmasq (custom DNS forwarders), socat and openssl (appliances) serve some baselines only,
    // but a catalog run needs them all: say so before anything is built.
    for bin in ["runc", "docker-registry", "nft", "ip", "nsenter", "unshare", "dnsmasq", "socat", "openssl"] {
        if which(bin).is_none() {
            return Err(BackendError::new(format!(
                "`{bin}` is not installed: run `bash .ci/run` once, or apt-get install runc docker-registry nftables iproute2 busybox-static containernetworking-plugins dnsmasq-base socat openssl"
            )));
        }
    }
    for file in [pullproof_host_runtime::image::BUSYBOX, "/usr/lib/cni/bridge", "/usr/lib/cni/host-local"] {
        if !Path::new(file).is_file() {
            return Err(BackendError::new(format!(
                "{file} is missing: apt-get install busybox-static containernetworking-plugins"
            )));
        }
    }
    options.components.check().map_err(BackendError::new)
}

/// `bin` on PATH, else in the system folders a non-login shell may leave off it (dnsmasq lives
/// in /usr/sbin).
fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|f| f.is_file())
}

/// The host backend. Its scenarios share one control plane, started with the first world and
/// stopped by [`Backend::finish`].
#[derive(Debug, Clone)]
pub struct HostBackend {
    /// Settings.
    pub options: HostOptions,
    cluster: Arc<Mutex<Option<Arc<SharedCluster>>>>,
    runid: String,
    lease: Arc<std::sync::Mutex<Option<lease::Lease>>>,
}

impl Default for HostBackend {
    fn default() -> Self {
        Self::new(HostOptions::default())
    }
}

impl HostBackend {
    /// A backend with these settings; nothing starts until the first world.
    pub fn new(options: HostOptions) -> Self {
        Self { options, cluster: Default::default(), runid: pullproof_host_net::new_runid(), lease: Default::default() }
    }

    /// The run's folder (control plane, per-scenario worlds).
    pub fn run_dir(&self) -> PathBuf {
        self.options.work_dir.join(format!("pullproof-{}", self.runid))
    }

    /// Changes the run's lease and saves it.
    fn update_lease(&self, f: impl FnOnce(&mut lease::Lease)) -> Result<(), BackendError> {
        let mut slot = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        let l = slot.get_or_insert_with(|| lease::Lease::mine(&self.runid, &self.run_dir()));
        f(l);
        l.save().map_err(|e| err("lease")(e2s(e)))
    }

    /// The run's id.
    pub fn runid(&self) -> &str {
        &self.runid
    }

    /// A handle on the run's lease as this process last wrote it, kept after the file is
    /// released: an abort (a second Ctrl-C) reclaims from it whatever teardown had not finished.
    pub fn lease_handle(&self) -> LeaseHandle {
        LeaseHandle(self.lease.clone())
    }

    /// The run's cluster, started on first use.
    pub async fn cluster(&self) -> Result<Arc<SharedCluster>, BackendError> {
        let mut slot = self.cluster.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let dir = self.run_dir();
        std::fs::create_dir_all(&dir).map_err(|e| err("run folder")(e2s(e)))?;
        // Others may pass through (to an engine's own folder) but list nothing.
        chmod(&dir, 0o711)?;
        // Claim the folder before anything starts in it, so `pullproof clean` can reclaim it if
        // this process is killed.
        self.update_lease(|_| {})?;
        let c = Arc::new(SharedCluster::start(self.options.components.clone(), &dir).await?);
        *slot = Some(c.clone());
        Ok(c)
    }
}

/// A baseline realised on this host.
pub struct HostWorld {
    baseline: Arc<Baseline>,
    world: World,
    dir: PathBuf,
    emulator: Option<RunningEmulator>,
    exec: Executor,
    /// The engine's own folder (outside the world's, which it cannot read).
    engine_dir: PathBuf,
    /// Who external engines run as.
    engine_user: Option<EngineUser>,
    /// The engine's own identity: Reader on the subscription, Graph read, pull on registries
    /// (an engine that tries to write is refused, as on Azure).
    engine_identity: pullproof_emulator::ClientCredentials,
    engine_tokens: Arc<ClientCredentials>,
    http: reqwest::Client,
    topology: Option<Arc<Topology>>,
    dns: Option<Arc<DnsServer>>,
    /// Azure's resolver as the custom DNS forwarders' VNet sees it, and the forwarders (real
    /// dnsmasq processes in the registry namespace).
    forwarder_dns: Option<Arc<DnsServer>>,
    dnsmasq: Vec<ProcessGuard>,
    /// The world's TLS-inspecting appliance (a real socat, hosted by the router namespace).
    appliance: Option<ProcessGuard>,
    watcher: Option<JoinHandle<()>>,
    fronts: Vec<Front>,
    registry: Option<Registry>,
    cluster: Arc<SharedCluster>,
    scenario: Option<Scenario>,
    node: Option<Node>,
    placement: NodePlacement,
    cloud_config: PathBuf,
    ca_bundle: PathBuf,
    login_server: String,
    /// The registry front's loopback address for engines (the operator's view).
    operator_registry: Option<SocketAddr>,
    /// Secret values the world learned (redacted from artifacts).
    learned: Vec<String>,
    /// How the workload comes back after a fix.
    recovery: crate::scenario::Recovery,
}

fn err(context: &str) -> impl Fn(String) -> BackendError + '_ {
    move |e| BackendError(format!("{context}: {e}"))
}

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Backend for HostBackend {
    type World = HostWorld;

    fn kind(&self) -> BackendKind {
        BackendKind::Host
    }

    async fn provision(&self, entry: &Entry) -> Result<HostWorld, BackendError> {
        preflight(&self.options)?;
        let cluster = self.cluster().await?;
        // Each scenario in its own namespace, named after it.
        let mut baseline = (*entry.baseline).clone();
        baseline.workload.namespace = entry.scenario.name.clone();
        let b = Arc::new(baseline);
        let runid = pullproof_host_net::new_runid();
        self.update_lease(|l| l.netns_runids.push(runid.clone()))?;
        let dir = self.run_dir().join(&entry.scenario.name);
        std::fs::create_dir_all(&dir).map_err(|e| err("work dir")(e2s(e)))?;
        // The world's logs, credentials and kubeconfigs are the harness's alone.
        chmod(&dir, 0o700)?;
        let engine_dir = self.run_dir().join("engines").join(&entry.scenario.name);
        let login = b.registry.login_server();

        // Control plane.
        // Asynchronous writes answer with ARM's operation protocol, as Azure does: every client
        // (provisioning, faults, pulldoctor's fix) must follow it.
        let emulator = Emulator::start(EmulatorConfig {
            extra_san: vec![login.clone()],
            async_operations: true,
            ..Default::default()
        })
        .await
        .map_err(|e| err("emulator")(e2s(e)))?;
        let world = World::new(emulator.subscription_id(), emulator.tenant_id());
        let http =
            azure_rest::http_client(std::slice::from_ref(&emulator.ca_pem)).map_err(|e| err("http client")(e2s(e)))?;
        let op = emulator.operator();
        let token_url = format!("{}/{}/oauth2/v2.0/token", emulator.base_url, emulator.tenant_id());
        let tokens = ClientCredentials::new(
            http.clone(),
            token_url,
            op.client_id.clone(),
            op.client_secret.expose().to_string(),
        );
        let arm = Client::builder(&emulator.base_url, ARM_SCOPE)
            .http(http.clone())
            .token_source(tokens.clone())
            .build()
            .map_err(|e| err("ARM client")(e2s(e)))?;
        let graph = Client::builder(&emulator.base_url, GRAPH_SCOPE)
            .http(http.clone())
            .token_source(tokens.clone())
            .build()
            .map_err(|e| err("Graph client")(e2s(e)))?;
        let engine_identity = emulator.create_reader("pullproof-engine").map_err(|e| err("engine identity")(e2s(e)))?;
        let engine_tokens = ClientCredentials::new(
            http.clone(),
            format!("{}/{}/oauth2/v2.0/token", emulator.base_url, emulator.tenant_id()),
            engine_identity.client_id.clone(),
            engine_identity.client_secret.expose().to_string(),
        );
        let mut exec = Executor::new(arm, graph);
        exec.run_all(&crate::arm::provision::provision(&b, &world))
            .await
            .map_err(|e| err("provisioning the baseline")(e2s(e)))?;

        let placement = NodePlacement::of(&b, &world).map_err(BackendError::new)?;
        let mut w = HostWorld {
            baseline: b.clone(),
            world,
            dir: dir.clone(),
            emulator: Some(emulator),
            exec,
            engine_identity,
            engine_tokens,
            http,
            topology: None,
            dns: None,
            forwarder_dns: None,
            dnsmasq: Vec::new(),
            appliance: None,
            watcher: None,
            fronts: vec![],
            registry: None,
            cluster,
            scenario: None,
            node: None,
            placement,
            cloud_config: dir.join("azure.json"),
            ca_bundle: dir.join("ca-bundle.pem"),
            login_server: login,
            operator_registry: None,
            learned: vec![],
            recovery: entry.scenario.expect.recovery,
            engine_dir,
            engine_user: self.options.engine_user,
        };
        // From here on, a failure tears down what was built.
        match w.bring_up(&runid).await {
            Ok(()) => Ok(w),
            Err(e) => {
                let _ = w.shutdown().await;
                Err(e)
            }
        }
    }

    async fn versions(&self) -> Option<crate::run::KubernetesVersions> {
        let c = self.cluster.lock().await.clone()?;
        let node = c.node_versions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(crate::run::KubernetesVersions {
            server_version: c.server_version.clone(),
            kubelet_version: node.as_ref().map(|n| n.0.clone()),
            container_runtime_version: node.map(|n| n.1),
            control_plane_startup_millis: Some(c.control_plane().startup().as_millis() as u64),
        })
    }

    async fn finish(&self) {
        let cluster = self.cluster.lock().await.take();
        if let Some(c) = cluster {
            // Every world holds a reference until its teardown; the last one stops the processes.
            let _ = tokio::task::spawn_blocking(move || drop(c)).await;
        }
        let _ = std::fs::remove_dir_all(self.run_dir());
        lease::remove_container_cgroup_parents();
        // The file goes; the copy in memory stays for an abort that lands during this teardown.
        if let Some(l) = self.lease.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            l.release();
        }
    }
}

/// See [`HostBackend::lease_handle`].
#[derive(Debug, Clone)]
pub struct LeaseHandle(Arc<std::sync::Mutex<Option<lease::Lease>>>);

impl LeaseHandle {
    /// The lease as last written, if the run got as far as claiming its folder.
    pub fn last(&self) -> Option<lease::Lease> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl HostWorld {
    fn emulator(&self) -> &RunningEmulator {
        self.emulator.as_ref().expect("the emulator lives until teardown")
    }

    fn scenario(&self) -> Result<&Scenario, BackendError> {
        self.scenario.as_ref().ok_or_else(|| BackendError::new("the scenario's namespace is not there"))
    }

    async fn bring_up(&mut self, runid: &str) -> Result<(), BackendError> {
        let b = self.baseline.clone();
        let dir = self.dir.clone();
        let login = self.login_server.clone();

        // Registry process, trusting the emulator's token signer.
        let root = dir.join("token-root.pem");
        std::fs::write(&root, &self.emulator().ca_pem).map_err(|e| err("registry")(e2s(e)))?;
        let auth = self.emulator().registry_token_auth(&login);
        // The harness's own calls to the token service (pushing the baseline's images) come from
        // loopback: treat them as arriving through a private endpoint, as a build agent inside
        // the VNet would. The node's traffic carries its real address (X-Forwarded-For).
        self.emulator().mark_private_source(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let registry = Registry::start(RegistryConfig {
            base_dir: Some(dir.clone()),
            log_file: Some(dir.join("registry.log")),
            auth: RegistryAuth::Token {
                realm: format!("https://{login}/oauth2/token"),
                service: auth.service,
                issuer: auth.issuer,
                root_cert_bundle: root,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| err("registry")(e2s(e)))?;
        self.push_images(&registry).await?;

        // VNets.
        let spec = realise::topology_spec(&b).map_err(BackendError::new)?;
        let topology = Arc::new(
            tokio::task::spawn_blocking({
                let runid = runid.to_string();
                move || Topology::build(&runid, &spec)
            })
            .await
            .map_err(|e| err("topology")(e2s(e)))?
            .map_err(|e| err("building the VNets")(e2s(e)))?,
        );
        self.topology = Some(topology.clone());
        let dp = self.emulator().subscribe();
        let snapshot = dp.borrow().clone();
        topology.apply(&realise::policy(&snapshot, &self.placement)).map_err(|e| err("router policy")(e2s(e)))?;
        let dns = Arc::new(
            topology.start_dns(realise::dns_view(&snapshot, &self.placement)).map_err(|e| err("DNS")(e2s(e)))?,
        );
        self.dns = Some(dns.clone());
        // Custom DNS: forwarder VMs (real dnsmasq) asking Azure's resolver from their own VNet.
        let forwarders = topology.spec().dns_forwarders.clone();
        let mut forwarder_view = None;
        if let Some(first) = forwarders.first() {
            let vnet_id = self.world.vnet(&b, &first.vnet);
            let server = topology
                .start_forwarder_dns(realise::dns_view_of(&snapshot, &vnet_id))
                .map_err(|e| err("DNS for the forwarders")(e2s(e)))?;
            let server = Arc::new(server);
            self.forwarder_dns = Some(server.clone());
            forwarder_view = Some((server, vnet_id));
            for f in &forwarders {
                self.dnsmasq.push(start_dnsmasq(&topology, f.ip, &dir)?);
            }
        }
        if let Some(a) = b.appliances.first() {
            self.appliance = Some(start_appliance(&topology, a, &dir).await?);
        }
        self.watcher = Some(spawn_watcher(dp.clone(), topology.clone(), dns, forwarder_view, self.placement.clone()));
        for f in &forwarders {
            wait_for_forwarder(&topology, f.ip, &login).await?;
        }

        // Nodes as the emulator sees them: IMDS answers for the first pool's scale set; traffic
        // from the node's own address reaches the registry only through the private endpoint.
        let vmss =
            snapshot.clusters.first().and_then(|c| c.pools.first()).and_then(|p| p.vmss_id.clone()).unwrap_or_default();
        let node_ip = IpAddr::V4(self.placement.ip);
        self.emulator().register_node(node_ip, &vmss);
        self.emulator().mark_private_source(node_ip);

        // The registry's endpoints and IMDS, inside the namespaces.
        let cert = self
            .emulator()
            .issue_server_cert(&{
                let mut names = vec![login.clone(), login.replacen(".azurecr.", ".privatelink.azurecr.", 1)];
                if b.registry.data_endpoint_enabled {
                    let data = format!("{}.{}.data.azurecr.io", b.registry.name.to_ascii_lowercase(), b.location);
                    names.push(data.replacen(".azurecr.", ".privatelink.azurecr.", 1));
                    names.push(data);
                }
                names
            })
            .map_err(|e| err("registry certificate")(e2s(e)))?;
        let tls = server_tls(&cert.cert_der, &cert.key_der).map_err(err("registry TLS"))?;
        let mut listeners = Vec::new();
        // The private endpoint's addresses: the registry's, and its data endpoint's.
        let private = b.registry.private_endpoint.iter().flat_map(|pe| {
            std::iter::once((&pe.ip, Endpoint::Private)).chain(pe.data_ip.iter().map(|d| (d, Endpoint::Data)))
        });
        for (ip, kind) in private {
            let ip: IpAddr = ip.parse().map_err(|_| BackendError::new(format!("private endpoint address `{ip}`")))?;
            let listener = topology
                .registry()
                .bind_tcp(SocketAddr::new(ip, realise::HTTPS))
                .map_err(|e| err("endpoint listener")(e2s(e)))?;
            listeners.push((listener, kind));
        }
        listeners.push((
            topology
                .registry()
                .bind_tcp(SocketAddr::new(IpAddr::V4(PUBLIC_REGISTRY_IP), realise::HTTPS))
                .map_err(|e| err("public listener")(e2s(e)))?,
            Endpoint::Public,
        ));
        // The operator's way in (an engine reading tags and platforms): loopback in the root
        // namespace, private-endpoint traffic as from a jump box inside the network.
        let operator = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| err("operator listener")(e2s(e)))?;
        self.operator_registry = Some(operator.local_addr().map_err(|e| err("operator listener")(e2s(e)))?);
        listeners.push((operator, Endpoint::Private));
        let base = self.emulator().base_url.clone();
        self.fronts.push(
            Front::registry(
                listeners,
                tls,
                &login,
                dp.clone(),
                &base,
                self.http.clone(),
                registry.socket().to_path_buf(),
            )
            .map_err(|e| err("registry front")(e2s(e)))?,
        );
        let imds = topology
            .node()
            .bind_tcp(SocketAddr::new(IpAddr::V4(pullproof_host_net::AZURE_IMDS), 80))
            .map_err(|e| err("IMDS listener")(e2s(e)))?;
        self.fronts.push(Front::imds(imds, node_ip, &base, self.http.clone()).map_err(|e| err("IMDS front")(e2s(e)))?);
        self.registry = Some(registry);

        std::fs::write(dir.join("emulator-ca.pem"), &self.emulator().ca_pem).map_err(|e| err("CA")(e2s(e)))?;
        // The node trusts the world's CA (containerd and the credential provider).
        let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        std::fs::write(&self.ca_bundle, format!("{system}\n{}", self.emulator().ca_pem))
            .map_err(|e| err("CA bundle")(e2s(e)))?;
        let _ = self.write_cloud_config(&snapshot)?;

        // The scenario's namespace, then its node (the first Linux pool's first VM).
        let wl = b.workload.clone();
        let scenario = Scenario::create(&self.cluster, &wl.namespace, &wl.name).await?;
        self.scenario = Some(scenario.clone());
        let pool = b
            .cluster
            .pools
            .iter()
            .find(|p| p.os == OsType::Linux)
            .ok_or_else(|| BackendError::new("the baseline has no Linux node pool to run a kubelet on"))?;
        let snapshot_cluster = snapshot.clusters.first();
        let provider_id = snapshot_cluster
            .and_then(|c| c.pools.iter().find(|p| p.name == pool.name))
            .and_then(|p| p.vmss_id.clone())
            .map(|v| format!("azure://{v}/virtualMachines/0"));
        let node_rg = provider_id
            .as_deref()
            .and_then(|p| p.split('/').skip_while(|s| !s.eq_ignore_ascii_case("resourceGroups")).nth(1))
            .unwrap_or_default()
            .to_string();
        let node = Node::start(
            NodeSpec {
                name: format!("aks-{}-{runid}-vmss000000", pool.name),
                scenario: wl.namespace.clone(),
                pool: pool.name.clone(),
                ip: self.placement.ip,
                provider_id,
                node_resource_group: node_rg,
                dir: dir.join("node"),
                ca_bundle: self.ca_bundle.clone(),
                azure_json: self.cloud_config.clone(),
                topology: topology.clone(),
            },
            &self.cluster,
        )
        .await?;
        self.node = Some(node);

        // The workload and its pull secret.
        if let Some(ps) = &wl.pull_secret {
            let (user, pass) = self.pull_secret_credentials(&ps.from).await?;
            self.learned.push(pass.clone());
            scenario.put_pull_secret(&ps.name, &login, &user, &pass).await?;
        }
        scenario
            .create_workload(
                &wl.container,
                &wl.image_for(&b.registry),
                &wl.node_selector,
                wl.pull_secret.as_ref().map(|p| p.name.as_str()),
            )
            .await?;
        Ok(())
    }

    /// Pushes every repository of the baseline, as an operator who holds AcrPush only for it.
    async fn push_images(&mut self, registry: &Registry) -> Result<(), BackendError> {
        let b = self.baseline.clone();
        let scope = self.world.registry(&b);
        let op = self.emulator().operator().clone();
        let assignment = format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{}",
            crate::arm::ids::stable_guid(&[&scope, "operator", "AcrPush"])
        );
        let api = azure_model::api_version::AUTHORIZATION;
        let role = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PUSH}",
            self.world.subscription
        );
        self.exec
            .arm
            .put(&assignment, api, &json!({ "properties": { "roleDefinitionId": role, "principalId": op.service_principal_object_id, "principalType": "ServicePrincipal" } }))
            .await
            .map_err(|e| err("push role")(e2s(e)))?;
        // A firewalled registry lets the harness push only from an allowed address (the push
        // comes from loopback); the rule is removed again before anything observes the world.
        let registry_id = self.world.registry(&b);
        let firewalled = b.registry.firewall.is_some();
        let loopback_rule = serde_json::json!({ "action": "Allow", "value": "127.0.0.1" });
        if firewalled {
            let add = Request::update(
                registry_id.clone(),
                azure_model::api_version::CONTAINER_REGISTRY,
                crate::arm::Edit::Append {
                    pointer: "/properties/networkRuleSet/ipRules".into(),
                    value: loopback_rule.clone(),
                },
                "allow the harness to push",
            );
            self.apply_azure(&[add]).await?;
        }
        let login = self.login_server.clone();
        // Linux images run Debian's static busybox, so their containers really run.
        let program = Program::busybox(&["sleep", "2147483647"]).map_err(|e| err("image")(e2s(e)))?;
        for repo in &b.registry.repositories {
            let token = self.registry_token(&op.client_id, op.client_secret.expose(), &repo.name).await?;
            let platforms: Vec<&str> = repo.platforms.iter().map(String::as_str).collect();
            for tag in &repo.tags {
                let image = pullproof_host_runtime::image::ImageSpec::new(&repo.name, tag, &platforms)
                    .and_then(|s| s.with_program(program.clone()).build())
                    .map_err(|e| err("image")(e2s(e)))?;
                registry.client().with_bearer(token.clone()).push(&image).await.map_err(|e| err("push")(e2s(e)))?;
            }
            let tags: Vec<&str> = repo.tags.iter().map(String::as_str).collect();
            self.emulator().push_repository(&login, &repo.name, &tags, &platforms);
        }
        self.exec.arm.delete(&assignment, api).await.map_err(|e| err("push role")(e2s(e)))?;
        if firewalled {
            let remove = Request::update(
                registry_id,
                azure_model::api_version::CONTAINER_REGISTRY,
                crate::arm::Edit::RemoveWhere {
                    pointer: "/properties/networkRuleSet/ipRules".into(),
                    field: "value".into(),
                    equals: serde_json::json!("127.0.0.1"),
                },
                "remove the harness's push rule",
            );
            self.apply_azure(&[remove]).await?;
        }
        Ok(())
    }

    /// An ACR access token with push for `repo`, through the emulator's real token flow.
    async fn registry_token(&self, client_id: &str, secret: &str, repo: &str) -> Result<String, BackendError> {
        let e = self.emulator();
        let login = &self.login_server;
        let aad: serde_json::Value = self
            .http
            .post(format!("{}/{}/oauth2/v2.0/token", e.base_url, e.tenant_id()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "https://containerregistry.azure.net/.default"),
            ])
            .send()
            .await
            .map_err(|x| err("AAD token")(e2s(x)))?
            .json()
            .await
            .map_err(|x| err("AAD token")(e2s(x)))?;
        let aad = aad["access_token"].as_str().unwrap_or_default();
        let acr = format!("{}/acr/{login}/oauth2", e.base_url);
        let refresh: serde_json::Value = self
            .http
            .post(format!("{acr}/exchange"))
            .form(&[
                ("grant_type", "access_token"),
                ("service", login.as_str()),
                ("tenant", e.tenant_id()),
                ("access_token", aad),
            ])
            .send()
            .await
            .map_err(|x| err("ACR exchange")(e2s(x)))?
            .json()
            .await
            .map_err(|x| err("ACR exchange")(e2s(x)))?;
        let scope = format!("repository:{repo}:push,pull");
        let access: serde_json::Value = self
            .http
            .post(format!("{acr}/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", login.as_str()),
                ("scope", &scope),
                ("refresh_token", refresh["refresh_token"].as_str().unwrap_or_default()),
            ])
            .send()
            .await
            .map_err(|x| err("ACR token")(e2s(x)))?
            .json()
            .await
            .map_err(|x| err("ACR token")(e2s(x)))?;
        access["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| BackendError::new("the ACR token service gave no push token"))
    }

    /// The username and password a pull secret is made of.
    async fn pull_secret_credentials(&mut self, from: &PullSecretSource) -> Result<(String, String), BackendError> {
        match from {
            PullSecretSource::Application { application } => {
                let b = &self.exec.bindings;
                let user = b.get(&format!("app.{application}.appId")).unwrap_or_default().to_string();
                let pass = b.get(&format!("secret.{application}")).unwrap_or_default().to_string();
                Ok((user, pass))
            }
            PullSecretSource::Admin => {
                let path = format!("{}/listCredentials", self.world.registry(&self.baseline));
                let creds = self
                    .exec
                    .arm
                    .post(&path, azure_model::api_version::CONTAINER_REGISTRY, None)
                    .await
                    .map_err(|e| err("listCredentials")(e2s(e)))?;
                let user = creds["username"].as_str().unwrap_or_default().to_string();
                let pass = creds["passwords"][0]["value"].as_str().unwrap_or_default().to_string();
                Ok((user, pass))
            }
        }
    }

    /// Writes the nodes' `/etc/kubernetes/azure.json` from the control plane, as AKS does when
    /// the cluster's identity or service principal changes. Whether it changed. The file is
    /// replaced atomically: the credential provider reads it on every call, and a half-written
    /// file reads as a service principal with no credentials.
    fn write_cloud_config(&self, dp: &DataPlane) -> Result<bool, BackendError> {
        let cluster = dp.clusters.first();
        let mut config = json!({ "cloud": "AzurePublicCloud", "tenantId": self.world.tenant, "subscriptionId": self.world.subscription });
        match (&self.baseline.cluster.identity, cluster) {
            (ClusterIdentity::ManagedIdentity, Some(c)) => {
                config["useManagedIdentityExtension"] = json!(true);
                config["aadClientId"] = json!("msi");
                config["aadClientSecret"] = json!("msi");
                config["userAssignedIdentityID"] =
                    json!(c.kubelet_identity.as_ref().and_then(|k| k.client_id.clone()).unwrap_or_default());
            }
            (ClusterIdentity::ServicePrincipal { .. }, Some(c)) => {
                let sp = c.service_principal.as_ref();
                config["useManagedIdentityExtension"] = json!(false);
                config["aadClientId"] = json!(sp.map(|s| s.client_id.clone()).unwrap_or_default());
                config["aadClientSecret"] =
                    json!(sp.and_then(|s| s.secret.as_ref()).map(|s| s.expose().to_string()).unwrap_or_default());
            }
            _ => {}
        }
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        if std::fs::read_to_string(&self.cloud_config).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        let tmp = self.cloud_config.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.cloud_config))
            .map_err(|e| err("cloud config")(e2s(e)))?;
        Ok(true)
    }

    /// Follows the control plane onto the node: a new `azure.json` restarts the kubelet, as AKS
    /// does when it reconciles a cluster's identity or resets its service principal (the
    /// credentials the plugin handed out before are gone with the old process).
    async fn follow_cloud_config(&mut self) -> Result<bool, BackendError> {
        let Some(dp) = self.emulator.as_ref().map(|e| e.data_plane()) else { return Ok(false) };
        let changed = self.write_cloud_config(&dp)?;
        if changed && let Some(n) = &mut self.node {
            n.restart_kubelet().await?;
        }
        Ok(changed)
    }

    /// After a fault: the next pod pulls again on a node that starts fresh (a rollout, and the
    /// kubelet restarted as a rebooted or new node would be, so no credential it cached before
    /// the fault hides it).
    /// The scale set of pool `pool`, as the emulated control plane holds it.
    fn pool_scale_set(&self, pool: &str) -> Option<String> {
        let dp = self.emulator.as_ref()?.data_plane();
        dp.clusters.iter().flat_map(|c| c.pools.iter()).find(|p| p.name == pool).and_then(|p| p.vmss_id.clone())
    }

    async fn fresh_pull(&mut self) -> Result<(), BackendError> {
        if let Some(n) = &mut self.node {
            n.restart_kubelet().await?;
            // With dedicated data endpoints, only layer downloads touch the data endpoint, and a
            // node that holds the layers downloads none: the next pull is a new node's (the
            // image forgotten; containers that run keep their snapshots).
            if self.baseline.registry.data_endpoint_enabled {
                let image = self.baseline.workload.image_for(&self.baseline.registry);
                n.containerd.cri().remove_image(&image).await.map_err(|e| err("forgetting the image")(e2s(e)))?;
            }
        }
        self.scenario()?.rollout_restart().await
    }
    async fn apply_azure(&mut self, requests: &[Request]) -> Result<(), BackendError> {
        for r in requests {
            match self.exec.run(r).await {
                Ok(_) => {}
                // Re-creating what exists is what a revert after a successful fix does.
                Err(crate::arm::ExecError::Rest { source, .. }) if source.status() == Some(409) => {}
                Err(e) => return Err(BackendError::new(e)),
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), BackendError> {
        let mut problems = Vec::new();
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        if let Some(s) = self.scenario.take() {
            s.delete().await;
        }
        if let Some(n) = self.node.take() {
            problems.extend(n.stop(&self.cluster).await);
        }
        self.fronts.clear();
        self.dnsmasq.clear();
        self.appliance = None;
        self.forwarder_dns = None;
        self.dns = None;
        if let Some(r) = self.registry.take() {
            let _ = tokio::task::spawn_blocking(move || r.stop()).await;
        }
        if let Some(t) = self.topology.take() {
            match Arc::try_unwrap(t) {
                Ok(t) => {
                    if let Err(e) = tokio::task::spawn_blocking(move || t.teardown())
                        .await
                        .map_err(e2s)
                        .and_then(|r| r.map_err(e2s))
                    {
                        problems.push(format!("namespaces: {e}"));
                    }
                }
                Err(_) => problems.push("namespaces still in use".into()),
            }
        }
        if let Some(e) = self.emulator.take() {
            e.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if problems.is_empty() { Ok(()) } else { Err(BackendError::new(problems.join("; "))) }
    }

    /// The kubeconfig an engine gets: read-only, the scenario's namespace and the nodes.
    fn engine_kubeconfig(&self) -> Result<PathBuf, BackendError> {
        let ns = &self.baseline.workload.namespace;
        let cp = self.cluster.control_plane();
        cp.kubeconfig_for(
            &self.engine_dir,
            "engine",
            &cluster::engine_user(ns),
            None,
            &format!("https://{}", cp.address()),
            Some(ns),
        )
        .map_err(|e| err("engine kubeconfig")(e2s(e)))
    }
}

/// Re-applies the router policy and the DNS view on every control-plane change.
/// DNS a forwarder VM's way: a real dnsmasq at `ip` in the registry namespace that forwards
/// every query to Azure's resolver (168.63.129.16, on that namespace's loopback), caching
/// nothing, so control-plane changes show at once.
fn start_dnsmasq(topology: &Topology, ip: std::net::Ipv4Addr, dir: &Path) -> Result<ProcessGuard, BackendError> {
    let binary =
        ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].into_iter().map(Path::new).find(|p| p.exists()).ok_or_else(|| {
            BackendError::new("dnsmasq is not installed: `apt-get install dnsmasq-base` (custom DNS forwarders run it)")
        })?;
    let launcher = Launcher::in_netns(topology.registry().path());
    let args: Vec<String> = vec![
        "--keep-in-foreground".into(),
        "--conf-file=/dev/null".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--no-poll".into(),
        format!("--server={}", pullproof_host_net::AZURE_DNS),
        format!("--listen-address={ip}"),
        "--bind-interfaces".into(),
        "--except-interface=lo".into(),
        "--cache-size=0".into(),
        "--pid-file=".into(),
        "--log-facility=-".into(),
        "--user=root".into(),
    ];
    let cmd = launcher.command(binary, args);
    ProcessGuard::spawn("dnsmasq", &launcher, cmd, &dir.join(format!("dnsmasq-{ip}.log")))
        .map_err(|e| err("DNS forwarder (dnsmasq)")(e2s(e)))
}

/// The appliance a route with next hop `VirtualAppliance` at `a.ip` sends traffic through,
/// hosted by the router namespace (where such routes deliver: `RouteFate::Appliance`), listening
/// on port 443 for every destination routed to it, with `IP_TRANSPARENT` (it answers from
/// addresses that are not its own, as a transparent proxy does). `intercept`: a real socat terminating TLS with
/// a certificate from the appliance's own CA, made here with openssl (SANs for ACR's names, as
/// inspection appliances mint them), and re-encrypting towards the original destination.
/// `stall`: a real socat that accepts and never answers the TLS handshake.
async fn start_appliance(
    topology: &Arc<Topology>,
    a: &crate::baseline::Appliance,
    dir: &Path,
) -> Result<ProcessGuard, BackendError> {
    use crate::baseline::ApplianceTls;
    let socat = ["/usr/bin/socat", "/usr/local/bin/socat"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| BackendError::new("socat is not installed: `apt-get install socat` (appliances run it)"))?;
    let launcher = Launcher::in_netns(topology.router().path());
    let args: Vec<String> = match a.tls {
        ApplianceTls::Intercept => {
            let (cert, key) = (dir.join("appliance-cert.pem"), dir.join("appliance-key.pem"));
            let out = tokio::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
                .args(["-days", "1", "-subj"])
                .arg(format!("/O=pullproof/CN={} TLS inspection CA", a.name))
                .args(["-addext", "subjectAltName=DNS:*.azurecr.io,DNS:*.privatelink.azurecr.io"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .await
                .map_err(|e| err("appliance certificate (openssl)")(e2s(e)))?;
            if !out.status.success() {
                return Err(BackendError::new(format!(
                    "appliance certificate: openssl failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            // Towards the connection's original destination: the local address it arrived on,
            // which socat hands its child as SOCAT_SOCKADDR. (A script: socat's address syntax
            // would take the inner address's commas and colons for its own.)
            let relay = dir.join("appliance-relay.sh");
            std::fs::write(
                &relay,
                format!("#!/bin/sh\nexec {} - \"OPENSSL:$SOCAT_SOCKADDR:443,verify=0\"\n", socat.display()),
            )
            .map_err(|e| err("appliance relay")(e2s(e)))?;
            chmod(&relay, 0o755)?;
            vec![
                format!(
                    "OPENSSL-LISTEN:443,fork,reuseaddr,ip-transparent,cert={},key={},verify=0",
                    cert.display(),
                    key.display()
                ),
                format!("EXEC:{}", relay.display()),
            ]
        }
        ApplianceTls::Stall => vec!["TCP-LISTEN:443,fork,reuseaddr,ip-transparent".into(), "EXEC:sleep 3600".into()],
    };
    let cmd = launcher.command(socat, args);
    let log = dir.join(format!("appliance-{}.log", a.name));
    let guard =
        ProcessGuard::spawn("appliance (socat)", &launcher, cmd, &log).map_err(|e| err("appliance (socat)")(e2s(e)))?;
    // Listening: a connection to port 443 inside the router namespace is accepted.
    let t = topology.clone();
    let ready = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let open = t
                .router()
                .run(|| {
                    let to = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 443));
                    std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_millis(200)).is_ok()
                })
                .unwrap_or(false);
            if open {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    })
    .await
    .unwrap_or(false);
    if !ready {
        return Err(BackendError::new(format!("the appliance did not listen on 443 in 10 s: {}", guard.log_tail(10))));
    }
    Ok(guard)
}

/// Waits until the forwarder at `ip` answers the node for `name` (at most 10 s).
async fn wait_for_forwarder(topology: &Arc<Topology>, ip: std::net::Ipv4Addr, name: &str) -> Result<(), BackendError> {
    let (topology, name) = (topology.clone(), name.to_string());
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut last = String::new();
        while std::time::Instant::now() < deadline {
            let answer = topology.node().run(|| {
                let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))?;
                pullproof_host_net::dns::lookup(
                    &socket,
                    SocketAddr::new(IpAddr::V4(ip), 53),
                    &name,
                    pullproof_host_net::dns::rtype::A,
                    std::time::Duration::from_millis(500),
                )
            });
            match answer {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = e.to_string(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(BackendError::new(format!("the DNS forwarder {ip} did not answer the node in 10 s: {last}")))
    })
    .await
    .map_err(|e| err("DNS forwarder")(e2s(e)))?
}

fn spawn_watcher(
    mut dp: watch::Receiver<Arc<DataPlane>>,
    topology: Arc<Topology>,
    dns: Arc<DnsServer>,
    forwarder: Option<(Arc<DnsServer>, String)>,
    placement: NodePlacement,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while dp.changed().await.is_ok() {
            let snapshot = dp.borrow_and_update().clone();
            dns.update(realise::dns_view(&snapshot, &placement));
            if let Some((server, vnet_id)) = &forwarder {
                server.update(realise::dns_view_of(&snapshot, vnet_id));
            }
            let policy = realise::policy(&snapshot, &placement);
            let t = topology.clone();
            match tokio::task::spawn_blocking(move || t.apply(&policy)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("router policy: {e}"),
                Err(e) => tracing::error!("router policy task: {e}"),
            }
        }
    })
}

fn server_tls(cert_der: &[u8], key_der: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    pullproof_emulator::tls::install_default_crypto_provider();
    let cert = rustls::pki_types::CertificateDer::from(cert_der.to_vec());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key_der.to_vec()));
    let mut config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key).map_err(e2s)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl crate::run::World for HostWorld {
    async fn sync(&mut self) -> Result<Health, BackendError> {
        if let Some(dead) = self.node.as_ref().and_then(Node::dead) {
            return Err(BackendError::new(dead));
        }
        if let Some((what, tail)) = self.cluster.control_plane().dead() {
            return Err(BackendError::new(format!("the control plane died: {what}\n{tail}")));
        }
        let Some(pod) = self.scenario()?.newest_pod().await? else {
            return Ok(Health::Pending("no pod yet".into()));
        };
        let spec = pod.spec.clone().unwrap_or_default();
        if spec.node_name.is_none() {
            return self.unscheduled(&pod).await;
        }
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        for s in &statuses {
            if let Some(w) = s.state.as_ref().and_then(|st| st.waiting.as_ref()) {
                let reason = w.reason.as_deref().unwrap_or_default();
                if matches!(reason, "ErrImagePull" | "ImagePullBackOff") {
                    // The kubelet's own event, read through the API, is the symptom.
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let Some(message) = self.scenario()?.kubelet_failure(&name).await? else {
                        return Ok(Health::Pending(format!("{reason}, no Failed event from the kubelet yet")));
                    };
                    return Ok(Health::Failing { reason: reason.to_string(), message });
                }
                if matches!(reason, "InvalidImageName" | "ErrImageNeverPull") {
                    let message = w.message.clone().unwrap_or_default();
                    return Ok(Health::Failing { reason: reason.to_string(), message });
                }
                return Ok(Health::Pending(format!("{reason}: {}", w.message.as_deref().unwrap_or_default())));
            }
        }
        if !statuses.is_empty() && statuses.iter().all(|s| s.state.as_ref().is_some_and(|st| st.running.is_some())) {
            Ok(Health::Running)
        } else {
            Ok(Health::Pending("containers not started".into()))
        }
    }

    async fn apply(&mut self, m: &Mutation) -> Result<(), BackendError> {
        let wl = self.baseline.workload.clone();
        match realise_mutation(m, &self.baseline, &self.world) {
            Realisation::Nothing => {}
            Realisation::Azure(reqs) => self.apply_azure(&reqs).await?,
            Realisation::Cluster(ClusterOp::SetImage(image)) => {
                self.scenario()?.set_image(&wl.container, &image).await?;
            }
            Realisation::Cluster(ClusterOp::RestoreWorkload) => {
                let image = wl.image_for(&self.baseline.registry);
                let s = self.scenario()?;
                s.set_image(&wl.container, &image).await?;
                s.set_node_selector(&wl.node_selector).await?;
            }
            Realisation::Cluster(ClusterOp::RefreshPullSecret(secret)) => {
                let (user, pass) = self.pull_secret_credentials(&PullSecretSource::Admin).await?;
                self.learned.push(pass.clone());
                let login = self.login_server.clone();
                self.scenario()?.put_pull_secret(&secret, &login, &user, &pass).await?;
            }
            Realisation::Cluster(ClusterOp::DeletePullSecret(secret)) => {
                self.scenario()?.delete_secret(&secret).await?;
            }
            Realisation::Cluster(ClusterOp::RekeyPullSecret { secret, registry }) => {
                let (user, pass) = self.pull_secret_credentials(&PullSecretSource::Admin).await?;
                self.learned.push(pass.clone());
                // Written whole (not merged): the secret holds only the entry for the other host.
                let s = self.scenario()?;
                s.delete_secret(&secret).await?;
                s.put_pull_secret(&secret, &registry, &user, &pass).await?;
            }
            Realisation::Node(op) => {
                let (pool, healthy) = match &op {
                    NodeOp::BreakCredentialProvider(p) => (p, false),
                    NodeOp::RestoreCredentialProvider(p) => (p, true),
                };
                let node = self.node.as_mut().ok_or_else(|| BackendError::new("the world has no node"))?;
                if &node.pool != pool {
                    return Err(BackendError::new(format!(
                        "pool {pool} has no Linux node on the host backend (its node is in pool {})",
                        node.pool
                    )));
                }
                // The kubelet reads the config at its restart, in `fresh_pull` below.
                node.set_credential_provider_cloud_config(healthy);
            }
            Realisation::Emulator(EmulatorOp::SetSecretExpiry { application, expires }) => {
                let app_id =
                    self.exec.bindings.get(&format!("app.{application}.appId")).unwrap_or_default().to_string();
                let now = time::OffsetDateTime::now_utc();
                let end = match expires.as_str() {
                    "past" => now - time::Duration::days(1),
                    "+1y" => now + time::Duration::days(365),
                    other => azure_model::graph::parse_time(other).unwrap_or(now + time::Duration::days(365)),
                };
                self.emulator().set_secret_expiry(&app_id, end).map_err(|e| err("secret expiry")(e2s(e)))?;
            }
        }
        if let Some(e) = &self.emulator {
            self.write_cloud_config(&e.data_plane())?;
        }
        self.fresh_pull().await
    }

    async fn engine_input(&mut self) -> Result<EngineInput, BackendError> {
        let ns = self.baseline.workload.namespace.clone();
        // A fresh folder of the engine's own, holding only its inputs.
        let _ = std::fs::remove_dir_all(&self.engine_dir);
        std::fs::create_dir_all(&self.engine_dir).map_err(|e| err("engine folder")(e2s(e)))?;
        if let Some(parent) = self.engine_dir.parent() {
            chmod(parent, 0o711)?;
        }
        let kubeconfig = self.engine_kubeconfig()?;
        let dump = self.engine_dir.join("dump");
        cluster::dump(&self.cluster.components.kubectl(), &kubeconfig, &ns, &dump).await?;
        let inventory = self.engine_dir.join("azure.inventory.json");
        // What a user can export: ARM bodies and Graph objects. Never the harness's own record
        // of what it pushed: an engine reads registry content from the registry.
        let mut export = self.emulator().export();
        export.registry_content.clear();
        std::fs::write(&inventory, export.to_json()).map_err(|e| err("inventory")(e2s(e)))?;
        let ca = self.engine_dir.join("emulator-ca.pem");
        std::fs::write(&ca, &self.emulator().ca_pem).map_err(|e| err("CA")(e2s(e)))?;
        // The pinned kubectl, reachable by the engine's user (the cache may be under a home
        // it cannot enter): a hard link where the file system allows, else a copy.
        let bin = self.engine_dir.join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| err("engine bin")(e2s(e)))?;
        let kubectl = self.cluster.components.kubectl();
        if std::fs::hard_link(&kubectl, bin.join("kubectl")).is_err() {
            std::fs::copy(&kubectl, bin.join("kubectl")).map_err(|e| err("kubectl for the engine")(e2s(e)))?;
        }
        if let Some(user) = self.engine_user {
            chown_tree(&self.engine_dir, user)?;
        }
        chmod(&self.engine_dir, 0o700)?;
        use azure_rest::TokenSource;
        // The engine reads with its own Reader identity, never the operator's.
        let token = self.engine_tokens.token(ARM_SCOPE).await.map_err(|e| err("ARM token")(e2s(e)))?;
        let graph_token = self.engine_tokens.token(GRAPH_SCOPE).await.map_err(|e| err("Graph token")(e2s(e)))?;
        let pod = self.scenario()?.newest_pod().await?.and_then(|p| p.metadata.name);
        Ok(EngineInput {
            dir: Some(self.engine_dir.clone()),
            run_as: self.engine_user.map(|u| (u.uid, u.gid)),
            dump_dir: dump,
            kubeconfig: Some(kubeconfig),
            inventory,
            namespace: ns,
            pod,
            arm_endpoint: Some(self.emulator().base_url.clone()),
            ca_file: Some(ca),
            arm_token: Some(token.token),
            graph_endpoint: Some(self.emulator().base_url.clone()),
            graph_token: Some(graph_token.token),
            registry_addresses: self.operator_registry.map(|a| (self.login_server.clone(), a)).into_iter().collect(),
            azure_login: Some(crate::run::backend::AzureLogin {
                token_url: format!("{}/{}/oauth2/v2.0/token", self.emulator().base_url, self.emulator().tenant_id()),
                client_id: self.engine_identity.client_id.clone(),
                client_secret: self.engine_identity.client_secret.expose().to_string(),
                graph_endpoint: self.emulator().base_url.clone(),
            }),
        })
    }

    async fn remediate(&mut self, plan: &pulldoctor::Plan) -> Result<Vec<String>, BackendError> {
        // pulldoctor's own remediation code (`pulldoctor fix --apply`): the same steps, guards
        // and requests, against the emulator's ARM and Graph and the run's real API server.
        let inventory = self.emulator().export();
        let now = time::OffsetDateTime::now_utc();
        let steps =
            pulldoctor::apply::translate(&plan.actions, &pulldoctor::apply::PlanContext { inventory: &inventory, now });
        let kube: Arc<dyn pulldoctor::apply::KubernetesApi> = Arc::new(self.cluster.admin.clone());
        let executor = pulldoctor::apply::Executor {
            connections: pulldoctor::apply::Connections {
                arm: Some(self.exec.arm.clone()),
                graph: Some(self.exec.graph.clone()),
                kube: Some(kube),
            },
            apply: true,
            now,
        };
        let audit = executor.run(&steps).await;
        let mut done = Vec::new();
        for r in &audit.records {
            use pulldoctor::apply::Outcome;
            match r.outcome {
                Outcome::Applied | Outcome::AlreadyDone => done.push(r.what.clone()),
                Outcome::Manual => {
                    return Err(BackendError::new(format!(
                        "needs a person: {}{}",
                        r.what,
                        r.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
                    )));
                }
                other => {
                    return Err(BackendError::new(format!(
                        "{} ended {other:?}: {}",
                        r.what,
                        r.note.as_deref().unwrap_or("no detail")
                    )));
                }
            }
        }
        self.follow_cloud_config().await?;
        // What people do after a fix: a rollout restart; or nothing, and the kubelet's back-off
        // retries the failing pod.
        if self.recovery == crate::scenario::Recovery::Restart {
            self.scenario()?.rollout_restart().await?;
        }
        Ok(done)
    }

    async fn apply_proposal(&mut self, action: &pulldoctor::Action) -> Result<String, BackendError> {
        use pulldoctor::Action;
        let wl = self.baseline.workload.clone();
        let done = match action {
            Action::SetImage { container, image, .. } => {
                self.scenario()?.set_image(container, image).await?;
                format!("set image of {container} to {image}")
            }
            Action::SetNodeSelector { node_selector, .. } => {
                self.scenario()?.set_node_selector(node_selector).await?;
                format!("set the node selector of {} to {node_selector:?}", wl.name)
            }
            Action::ReplacePullSecret { secret_name, registry, credential_source, .. } => {
                if credential_source != "adminCredentials" {
                    return Err(BackendError::new(format!(
                        "the harness rewrites pull secrets from the registry's admin credentials only, not `{credential_source}`"
                    )));
                }
                let (user, pass) = self.pull_secret_credentials(&PullSecretSource::Admin).await?;
                self.learned.push(pass.clone());
                self.scenario()?.put_pull_secret(secret_name, registry, &user, &pass).await?;
                format!("rewrote pull secret {secret_name} for {registry} from the admin credentials")
            }
            other => {
                let Some(reqs) = crate::arm::proposal::requests_for(other, &self.world.subscription) else {
                    return Err(BackendError::new(
                        "the harness does not apply this kind of action as a proposal (propose it in an automatic plan)",
                    ));
                };
                self.apply_azure(&reqs).await?;
                reqs.iter().map(|r| r.purpose.clone()).collect::<Vec<_>>().join("; ")
            }
        };
        self.follow_cloud_config().await?;
        if self.recovery == crate::scenario::Recovery::Restart {
            self.scenario()?.rollout_restart().await?;
        }
        Ok(done)
    }

    fn engine_refusals(&self) -> Vec<String> {
        self.emulator.as_ref().map(|e| e.refusals()).unwrap_or_default()
    }

    fn touched(&self, fault: &crate::scenario::Fault) -> Vec<String> {
        use crate::scenario::Fault as F;
        let (b, w, bind) = (&*self.baseline, &self.world, &self.exec.bindings);
        let mut out: Vec<String> = Vec::new();
        // The resources the fault's own requests changed (placeholders resolved with what
        // provisioning and injection learned), with their parents; a role assignment is
        // blamed by its scope.
        if let Realisation::Azure(reqs) = realise_mutation(&fault.mutation(), b, w) {
            for r in
                reqs.iter().filter(|r| r.service == crate::arm::Service::Arm && r.method != azure_rest::Method::Get)
            {
                let Ok(path) = bind.substitute(&r.path) else { continue };
                let path = ["/resetServicePrincipalProfile", "/regenerateCredential"]
                    .iter()
                    .fold(path, |p, action| p.strip_suffix(action).map(str::to_string).unwrap_or(p));
                match path.split_once("/providers/Microsoft.Authorization/roleAssignments/") {
                    Some((scope, _)) => out.push(scope.to_string()),
                    None => {
                        if let Some(parent) = azure_model::ResourceId::parse(&path).ok().and_then(|id| id.parent()) {
                            out.push(parent.as_str().to_string());
                        }
                        out.push(path);
                    }
                }
            }
        }
        let app = |name: &str, out: &mut Vec<String>| {
            for key in [format!("app.{name}.appId"), format!("app.{name}.id")] {
                out.extend(bind.get(&key).map(str::to_string));
            }
        };
        let workload = format!("{}/{}", b.workload.namespace, b.workload.name);
        let pull_secret = b.workload.pull_secret.as_ref().map(|p| format!("{}/{}", b.workload.namespace, p.name));
        match fault {
            F::DeleteRoleAssignment { principal, .. } => match principal.strip_prefix("application:") {
                Some(name) => {
                    app(name, &mut out);
                    out.extend(bind.get(&format!("sp.{name}.id")).map(str::to_string));
                }
                None => {
                    out.push(w.kubelet_identity(b));
                    out.extend(bind.get("kubelet.principalId").map(str::to_string));
                }
            },
            F::ExpireApplicationSecret { application } => {
                app(application, &mut out);
                if matches!(&b.cluster.identity, ClusterIdentity::ServicePrincipal { application: a } if a == application)
                {
                    out.push(w.cluster(b));
                }
                out.extend(pull_secret.clone());
            }
            F::ReplaceClusterServicePrincipal { .. } => {
                // The roles stay on the old principal: the registry is where they no longer apply.
                out.push(w.registry(b));
                if let ClusterIdentity::ServicePrincipal { application } = &b.cluster.identity {
                    app(application, &mut out);
                }
            }
            F::RegenerateRegistryPassword { .. } | F::DeletePullSecret { .. } | F::RekeyPullSecret { .. } => {
                out.extend(pull_secret)
            }
            F::SetImage { .. } => out.push(workload),
            F::DeleteVnetLink { vnet, .. } => out.push(w.vnet(b, vnet)),
            F::DeletePeering { from, to, .. } => {
                out.push(w.vnet(b, from));
                out.push(w.vnet(b, to));
            }
            // The approval is the registry owner's: the registry and its endpoint.
            F::RecreatePrivateEndpointManual { .. } => out.push(w.registry(b)),
            // The nodes of the pool: its scale set.
            F::MisconfigureCredentialProvider { pool } => out.extend(self.pool_scale_set(pool)),
            _ => {}
        }
        out.sort();
        out.dedup();
        out
    }

    fn changes_of(&self, m: &Mutation) -> Vec<pulldoctor::plan::Change> {
        match realise_mutation(m, &self.baseline, &self.world) {
            Realisation::Azure(reqs) => crate::arm::proposal::changes(&reqs),
            // In Azure, a pool's nodes get AKS's own node configuration back by a reimage of
            // its scale set (an update of it).
            Realisation::Node(NodeOp::RestoreCredentialProvider(pool)) => {
                self.pool_scale_set(&pool).into_iter().map(pulldoctor::plan::Change::update).collect()
            }
            _ => Vec::new(),
        }
    }

    async fn artifacts(&mut self, dir: &Path) {
        let mut secrets: Vec<String> = self.exec.bindings.secrets().into_iter().map(str::to_string).collect();
        secrets.extend(self.learned.iter().cloned());
        let redact = |text: String| {
            secrets.iter().filter(|s| !s.is_empty()).fold(text, |t, s| t.replace(s.as_str(), "<redacted>"))
        };
        let mut logs: Vec<(String, PathBuf)> = vec![
            ("registry.log".into(), self.dir.join("registry.log")),
            ("containerd.log".into(), self.dir.join("node/containerd.log")),
        ];
        if let Some(k) = self.node.as_ref().and_then(Node::kubelet_log) {
            logs.push(("kubelet.log".into(), k));
        }
        for (name, path) in logs {
            if let Ok(text) = std::fs::read_to_string(path) {
                let _ = std::fs::write(dir.join(name), redact(text));
            }
        }
        if let Some(e) = &self.emulator {
            let _ = std::fs::write(dir.join("emulator-state.json"), redact(e.export().to_json()));
        }
        // The real dump, as the admin sees it; secrets' data removed.
        let ns = self.baseline.workload.namespace.clone();
        let out = dir.join("dump");
        let cp = self.cluster.control_plane();
        if cluster::dump(&self.cluster.components.kubectl(), cp.admin_kubeconfig(), &ns, &out).await.is_ok() {
            let secrets_file = out.join(&ns).join("secrets.json");
            if let Ok(text) = std::fs::read_to_string(&secrets_file)
                && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                for item in v["items"].as_array_mut().into_iter().flatten() {
                    item["data"] = json!({ "redacted": "" });
                }
                let _ = std::fs::write(&secrets_file, v.to_string());
            }
        }
    }

    async fn teardown(mut self) -> Result<(), BackendError> {
        self.shutdown().await
    }

    fn access(&self) -> String {
        let cp = self.cluster.control_plane();
        let wl = &self.baseline.workload;
        let base = self.emulator.as_ref().map(|e| e.base_url.clone()).unwrap_or_default();
        format!(
            "  export KUBECONFIG={}\n  alias kubectl={}\n  kubectl -n {} describe pod -l app={}\n  kubectl get nodes -o wide\n  \
             emulator (ARM, Graph, Entra): {base}  (CA: {})\n  \
             Ctrl-C here, or `pullproof down` elsewhere, removes the world.",
            cp.admin_kubeconfig().display(),
            self.cluster.components.kubectl().display(),
            wl.namespace,
            wl.name,
            self.dir.join("emulator-ca.pem").display(),
        )
    }
}

impl HostWorld {
    /// A pod no node takes. A pod that selects the baseline's Windows pool cannot run here (no
    /// Windows kubelet): its pull is checked as a Windows node would make it, with the upstream
    /// credential provider and containerd's own resolver for `windows/amd64`; the rest of a
    /// Windows node is left to the aks backend.
    async fn unscheduled(&self, pod: &k8s_openapi::api::core::v1::Pod) -> Result<Health, BackendError> {
        let spec = pod.spec.clone().unwrap_or_default();
        let selector = spec.node_selector.clone().unwrap_or_default();
        let windows_pool = self.baseline.cluster.pools.iter().find(|p| {
            p.os == OsType::Windows && {
                let labels = node::pool_labels(&p.name, "windows");
                !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            }
        });
        let why = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .and_then(|c| c.message.clone())
            .unwrap_or_else(|| "not scheduled yet".into());
        let (Some(_), Some(node)) = (windows_pool, &self.node) else {
            return Ok(Health::Pending(format!("not scheduled: {why}")));
        };
        let image = spec.containers.first().and_then(|c| c.image.clone()).unwrap_or_default();
        let plugin = self.cluster.components.acr_credential_provider();
        match node::windows_pool_pull(&node.containerd, &plugin, &self.cloud_config, &self.ca_bundle, &image).await {
            Ok(()) => Ok(Health::Running),
            Err(message) => Ok(Health::Failing { reason: "WindowsPoolPull".into(), message }),
        }
    }
}
