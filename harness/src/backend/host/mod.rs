//! The host backend: every scenario for real on one Linux machine (root), no Docker, no cluster.
//!
//! - **Control plane**: a private [`pullproof_emulator`] on loopback, provisioned from the
//!   baseline with ordinary ARM and Graph calls ([`crate::arm`]).
//! - **VNets**: network namespaces ([`pullproof_host_net`]): the node, a router whose nftables
//!   rules follow peerings, NSGs and routes, and the registry's private and public endpoints;
//!   a DNS responder at 168.63.129.16 in the node answering from the linked private zones.
//! - **Registry**: the real distribution registry ([`pullproof_host_runtime::Registry`]) with
//!   token auth from the emulator, behind a [`front`] that serves the login server name inside
//!   the namespaces and applies ACR's firewall.
//! - **Node**: a private containerd in the node namespace, driven over CRI by the kubelet logic
//!   of [`pullproof_host_kubelet`], with the `acr-credential-provider` plugin talking to IMDS
//!   (169.254.169.254, a front to the emulator) and the registry's token exchange.
//!
//! Every fault is a control-plane change; the data plane follows through the emulator's change
//! feed ([`realise`]). Every pull error comes from containerd itself.

pub mod front;
pub mod kubernetes;
pub mod node;
pub mod realise;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_rest::{ARM_SCOPE, Client, ClientCredentials, GRAPH_SCOPE};
use pullproof_emulator::{DataPlane, Emulator, EmulatorConfig, RunningEmulator};
use pullproof_host_kubelet::{
    Cluster, CredentialProvider, CredentialProviderConfig, Kubelet, KubeletConfig, NodeConfig, WorkloadSpec,
};
use pullproof_host_net::{DnsServer, Topology};
use pullproof_host_runtime::{Containerd, ContainerdConfig, Launcher, Registry, RegistryAuth, RegistryConfig};
use serde_json::json;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use self::front::{Endpoint, Front};
use self::node::{NodeOs, NodeRuntime};
use self::realise::{NodePlacement, PUBLIC_REGISTRY_IP};
use crate::arm::mutation::{ClusterOp, EmulatorOp, Realisation, realise as realise_mutation};
use crate::arm::{Executor, Request, World};
use crate::baseline::{Baseline, ClusterIdentity, PullSecretSource};
use crate::catalog::Entry;
use crate::run::{Backend, BackendError, EngineInput, Health};
use crate::scenario::{BackendKind, Mutation};

/// The AcrPush role: the harness's operator holds it only while pushing the baseline's images.
const ACR_PUSH: &str = azure_model::authorization::ACR_PUSH.id;

/// Host backend settings.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The `acr-credential-provider` binary.
    pub credential_provider: PathBuf,
    /// Where each run's files go (a `pullproof-RUNID` folder is made inside).
    pub work_dir: PathBuf,
}

impl Default for HostOptions {
    fn default() -> Self {
        let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("acr-credential-provider")));
        Self {
            credential_provider: std::env::var_os("PULLPROOF_CREDENTIAL_PROVIDER")
                .map(PathBuf::from)
                .or(beside)
                .unwrap_or_else(|| PathBuf::from("acr-credential-provider")),
            work_dir: std::env::temp_dir(),
        }
    }
}

/// Why the host backend cannot run here, if it cannot.
pub fn preflight(options: &HostOptions) -> Result<(), BackendError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(BackendError::new("the host backend needs root (network namespaces, containerd): run with sudo"));
    }
    for bin in ["containerd", "ctr", "docker-registry", "nft", "ip", "nsenter", "unshare"] {
        if which(bin).is_none() {
            return Err(BackendError::new(format!(
                "`{bin}` is not installed: run `bash .ci/run` once, or apt-get install containerd docker-registry nftables iproute2"
            )));
        }
    }
    if !options.credential_provider.is_file() {
        return Err(BackendError::new(format!(
            "the credential provider plugin {} does not exist: build it with `cargo build -p pullproof` or set PULLPROOF_CREDENTIAL_PROVIDER",
            options.credential_provider.display()
        )));
    }
    Ok(())
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(bin)).find(|f| f.is_file()))
}

/// The host backend.
#[derive(Debug, Clone, Default)]
pub struct HostBackend {
    /// Settings.
    pub options: HostOptions,
}

/// A baseline realised on this host.
pub struct HostWorld {
    baseline: Arc<Baseline>,
    world: World,
    dir: PathBuf,
    emulator: Option<RunningEmulator>,
    exec: Executor,
    tokens: Arc<ClientCredentials>,
    http: reqwest::Client,
    topology: Option<Arc<Topology>>,
    dns: Option<Arc<DnsServer>>,
    watcher: Option<JoinHandle<()>>,
    fronts: Vec<Front>,
    registry: Option<Registry>,
    containerd: Option<Arc<Containerd>>,
    cluster: Arc<Mutex<Cluster>>,
    /// Secret values written into the cluster by remediation (redacted from artifacts).
    learned: kubernetes::Learned,
    kubelets: Vec<(Kubelet, NodeRuntime)>,
    placement: NodePlacement,
    cloud_config: PathBuf,
    login_server: String,
    /// The registry front's loopback address for engines (the operator's view).
    operator_registry: Option<SocketAddr>,
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
        let b = entry.baseline.clone();
        let runid = pullproof_host_net::new_runid();
        let dir = self.options.work_dir.join(format!("pullproof-{runid}"));
        std::fs::create_dir_all(&dir).map_err(|e| err("work dir")(e2s(e)))?;
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
            tokens,
            http,
            topology: None,
            dns: None,
            watcher: None,
            fronts: vec![],
            registry: None,
            containerd: None,
            cluster: Arc::new(Mutex::new(Cluster::new())),
            learned: Default::default(),
            kubelets: vec![],
            placement,
            cloud_config: dir.join("azure.json"),
            login_server: login,
            operator_registry: None,
        };
        // From here on, a failure tears down what was built.
        match w.bring_up(&self.options, &runid).await {
            Ok(()) => Ok(w),
            Err(e) => {
                let _ = w.shutdown().await;
                Err(e)
            }
        }
    }
}

impl HostWorld {
    fn emulator(&self) -> &RunningEmulator {
        self.emulator.as_ref().expect("the emulator lives until teardown")
    }

    async fn bring_up(&mut self, options: &HostOptions, runid: &str) -> Result<(), BackendError> {
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
        let dp = self.emulator().subscribe();
        let snapshot = dp.borrow().clone();
        topology.apply(&realise::policy(&snapshot, &self.placement)).map_err(|e| err("router policy")(e2s(e)))?;
        let dns = Arc::new(
            topology.start_dns(realise::dns_view(&snapshot, &self.placement)).map_err(|e| err("DNS")(e2s(e)))?,
        );
        self.watcher = Some(spawn_watcher(dp.clone(), topology.clone(), dns.clone(), self.placement.clone()));

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
            .issue_server_cert(&[login.clone(), login.replacen(".azurecr.", ".privatelink.azurecr.", 1)])
            .map_err(|e| err("registry certificate")(e2s(e)))?;
        let tls = server_tls(&cert.cert_der, &cert.key_der).map_err(err("registry TLS"))?;
        let mut listeners = Vec::new();
        for pe in b.registry.private_endpoint.iter() {
            let ip: IpAddr = pe.ip.parse().map_err(|_| BackendError::new("private endpoint IP"))?;
            listeners.push((
                topology
                    .registry()
                    .bind_tcp(SocketAddr::new(ip, realise::HTTPS))
                    .map_err(|e| err("endpoint listener")(e2s(e)))?,
                Endpoint::Private,
            ));
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

        // The node: containerd in the node namespace with the VNet's resolver and the test CA.
        let bundle = dir.join("ca-bundle.pem");
        let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        std::fs::write(&bundle, format!("{system}\n{}", self.emulator().ca_pem))
            .map_err(|e| err("CA bundle")(e2s(e)))?;
        let containerd = Containerd::start(ContainerdConfig {
            base_dir: Some(dir.clone()),
            log_file: Some(dir.join("containerd.log")),
            ssl_cert_file: Some(bundle.clone()),
            launcher: Launcher::netns_with_resolv(topology.node().path(), topology.resolv_conf_path()),
            ..Default::default()
        })
        .await
        .map_err(|e| err("containerd")(e2s(e)))?;
        let containerd = Arc::new(containerd);

        // The cluster: nodes per pool, the workload, its pull secret.
        self.write_cloud_config(&snapshot)?;
        let provider_dir = options.credential_provider.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut provider = CredentialProvider::aks(&self.cloud_config.display().to_string());
        provider.name = options
            .credential_provider
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("acr-credential-provider")
            .to_string();
        provider.env.push(pullproof_host_kubelet::plugin::ExecEnvVar {
            name: "SSL_CERT_FILE".into(),
            value: bundle.display().to_string(),
        });
        // Upstream allows 60 s per call; an unreachable registry then costs a minute before the
        // kubelet's anonymous pull. Five seconds keeps the same outcome and message.
        provider.env.push(pullproof_host_kubelet::plugin::ExecEnvVar {
            name: "ACR_CREDENTIAL_PROVIDER_TIMEOUT".into(),
            value: "5".into(),
        });
        // The plugin runs as a node process: the node's network and the VNet's resolver.
        let plugin_prefix = vec![
            "nsenter".to_string(),
            format!("--net={}", topology.node().path().display()),
            "unshare".into(),
            "--mount".into(),
            "--propagation".into(),
            "private".into(),
            "sh".into(),
            "-c".into(),
            r#"set -e; mount --bind "$1" "$2"; shift 2; exec "$@""#.into(),
            "sh".into(),
            topology.resolv_conf_path().display().to_string(),
            "/etc/resolv.conf".into(),
        ];
        let secret = match &b.workload.pull_secret {
            Some(ps) => Some((ps.name.clone(), self.pull_secret_credentials(&ps.from).await?)),
            None => None,
        };
        {
            let mut cluster = self.cluster.lock().await;
            for (i, pool) in b.cluster.pools.iter().enumerate() {
                let os = if pool.os == crate::baseline::OsType::Windows { NodeOs::Windows } else { NodeOs::Linux };
                let name = format!("aks-{}-{runid}-vmss00000{i}", pool.name);
                let mut node = match os {
                    NodeOs::Linux => NodeConfig::linux(&name, &pool.name),
                    NodeOs::Windows => NodeConfig::windows(&name, &pool.name),
                };
                node.internal_ip = Some(self.placement.ip.to_string());
                node.provider_id = snapshot
                    .clusters
                    .first()
                    .and_then(|c| c.pools.iter().find(|p| p.name == pool.name))
                    .and_then(|p| p.vmss_id.clone())
                    .map(|v| format!("azure://{v}/virtualMachines/0"));
                cluster.add_node(&node).map_err(|e| err("cluster node")(e2s(e)))?;
                let mut config = KubeletConfig::new(&name);
                config.credential_provider_config = Some(CredentialProviderConfig::new(vec![provider.clone()]));
                config.credential_provider_bin_dir = provider_dir.clone();
                let kubelet = Kubelet::new(config)
                    .map_err(|e| err("kubelet")(e2s(e)))?
                    .with_command_wrapper(pullproof_host_kubelet::plugin::prefix_command(plugin_prefix.clone()));
                self.kubelets.push((kubelet, NodeRuntime { containerd: containerd.clone(), os }));
            }
            let wl = &b.workload;
            let mut spec =
                WorkloadSpec::new(&wl.namespace, &wl.name, &wl.image_for(&b.registry)).container(&wl.container);
            for (k, v) in &wl.node_selector {
                spec = spec.node_selector(k, v);
            }
            if let Some(ps) = &wl.pull_secret {
                spec = spec.pull_secret(&ps.name);
            }
            cluster.ensure_namespace(&wl.namespace);
            if let Some((name, (user, pass))) = &secret {
                cluster.put_secret(&wl.namespace, name, &login, user, pass);
            }
            cluster.create_workload(&spec).map_err(|e| err("workload")(e2s(e)))?;
        }
        self.topology = Some(topology);
        self.dns = Some(dns);
        self.containerd = Some(containerd);
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
        for repo in &b.registry.repositories {
            let token = self.registry_token(&op.client_id, op.client_secret.expose(), &repo.name).await?;
            let platforms: Vec<&str> = repo.platforms.iter().map(String::as_str).collect();
            for tag in &repo.tags {
                let image = pullproof_host_runtime::image::ImageSpec::new(&repo.name, tag, &platforms)
                    .and_then(|s| s.build())
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
    /// the cluster's identity or service principal changes.
    fn write_cloud_config(&self, dp: &DataPlane) -> Result<(), BackendError> {
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
        std::fs::write(&self.cloud_config, serde_json::to_string_pretty(&config).unwrap_or_default())
            .map_err(|e| err("cloud config")(e2s(e)))
    }

    /// Starts the workload over as on a fresh node: a new pod, no cached image, no cached
    /// credentials. Faults show on the next pull, as they do on AKS for new pods and nodes.
    async fn restart_workload(&mut self) -> Result<(), BackendError> {
        let wl = &self.baseline.workload;
        let mut cluster = self.cluster.lock().await;
        let images: Vec<String> = cluster
            .pods_of(&wl.namespace, &wl.name)
            .iter()
            .flat_map(|p| {
                p.spec.iter().flat_map(|s| s.containers.iter().filter_map(|c| c.image.clone())).collect::<Vec<_>>()
            })
            .collect();
        cluster.rollout_restart(&wl.namespace, &wl.name).map_err(|e| err("restart")(e2s(e)))?;
        drop(cluster);
        if let Some(c) = &self.containerd {
            for image in images {
                let _ = c.cri().remove_image(&image).await;
            }
        }
        for (k, _) in &mut self.kubelets {
            k.reset_backoff();
            k.clear_credential_cache();
        }
        Ok(())
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
        self.fronts.clear();
        self.dns = None;
        self.kubelets.clear();
        if let Some(c) = self.containerd.take() {
            match Arc::try_unwrap(c) {
                Ok(c) => {
                    if let Err(e) =
                        tokio::task::spawn_blocking(move || c.stop()).await.map_err(e2s).and_then(|r| r.map_err(e2s))
                    {
                        problems.push(format!("containerd: {e}"));
                    }
                }
                Err(_) => problems.push("containerd still in use".into()),
            }
        }
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
}

/// Re-applies the router policy and the DNS view on every control-plane change.
fn spawn_watcher(
    mut dp: watch::Receiver<Arc<DataPlane>>,
    topology: Arc<Topology>,
    dns: Arc<DnsServer>,
    placement: NodePlacement,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while dp.changed().await.is_ok() {
            let snapshot = dp.borrow_and_update().clone();
            dns.update(realise::dns_view(&snapshot, &placement));
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
        if let Some(e) = &self.emulator {
            self.write_cloud_config(&e.data_plane())?;
        }
        let mut cluster = self.cluster.lock().await;
        cluster.reconcile();
        cluster.schedule();
        for (kubelet, runtime) in &mut self.kubelets {
            let seen = kubelet.plugin_invocations().len();
            kubelet.sync_node(&mut cluster, runtime, true).await.map_err(|e| err("kubelet")(e2s(e)))?;
            for inv in &kubelet.plugin_invocations()[seen..] {
                if let Err(e) = &inv.result {
                    // The kubelet logs this and pulls without credentials; so do we.
                    tracing::debug!(image = %inv.image, "credential provider failed: {e}");
                    let line = format!("{} {}: {e}\n", inv.image, inv.provider);
                    let _ = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(self.dir.join("plugin.log"))
                        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
                }
            }
        }
        let wl = &self.baseline.workload;
        let pods = cluster.pods_of(&wl.namespace, &wl.name);
        let Some(pod) = pods.last() else { return Ok(Health::Pending("no pod yet".into())) };
        if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
            return Ok(Health::Pending("not scheduled: no node matches the nodeSelector".into()));
        }
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        for s in &statuses {
            if let Some(w) = s.state.as_ref().and_then(|st| st.waiting.as_ref()) {
                let message = w.message.clone().unwrap_or_default();
                let class = pulldoctor::symptom::Symptom::parse(&message).class;
                return Ok(Health::Failing { message, class });
            }
        }
        if !statuses.is_empty() && statuses.iter().all(|s| s.state.as_ref().is_some_and(|st| st.running.is_some())) {
            Ok(Health::Running)
        } else {
            Ok(Health::Pending("containers not started".into()))
        }
    }

    async fn apply(&mut self, m: &Mutation) -> Result<(), BackendError> {
        match realise_mutation(m, &self.baseline, &self.world) {
            Realisation::Nothing => {}
            Realisation::Azure(reqs) => self.apply_azure(&reqs).await?,
            Realisation::Cluster(ClusterOp::SetImage(image)) => {
                let wl = &self.baseline.workload;
                self.cluster
                    .lock()
                    .await
                    .set_image(&wl.namespace, &wl.name, &wl.container, &image)
                    .map_err(|e| err("set image")(e2s(e)))?;
            }
            Realisation::Cluster(ClusterOp::RestoreWorkload) => {
                let wl = self.baseline.workload.clone();
                let image = wl.image_for(&self.baseline.registry);
                let mut c = self.cluster.lock().await;
                c.set_image(&wl.namespace, &wl.name, &wl.container, &image)
                    .map_err(|e| err("restore image")(e2s(e)))?;
                c.set_node_selector(&wl.namespace, &wl.name, wl.node_selector.clone())
                    .map_err(|e| err("restore nodeSelector")(e2s(e)))?;
            }
            Realisation::Cluster(ClusterOp::RefreshPullSecret(secret)) => {
                let (user, pass) = self.pull_secret_credentials(&PullSecretSource::Admin).await?;
                let ns = self.baseline.workload.namespace.clone();
                let login = self.login_server.clone();
                self.cluster.lock().await.put_secret(&ns, &secret, &login, &user, &pass);
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
        self.restart_workload().await
    }

    async fn engine_input(&mut self) -> Result<EngineInput, BackendError> {
        let dump = self.dir.join("dump");
        let _ = std::fs::remove_dir_all(&dump);
        {
            let cluster = self.cluster.lock().await;
            pullproof_host_kubelet::dump::write_dump(&cluster, &dump, Default::default())
                .map_err(|e| err("dump")(e2s(e)))?;
        }
        let inventory = self.dir.join("azure.inventory.json");
        std::fs::write(&inventory, self.emulator().export().to_json()).map_err(|e| err("inventory")(e2s(e)))?;
        let ca = self.dir.join("emulator-ca.pem");
        std::fs::write(&ca, &self.emulator().ca_pem).map_err(|e| err("CA")(e2s(e)))?;
        use azure_rest::TokenSource;
        let token = self.tokens.token(ARM_SCOPE).await.map_err(|e| err("ARM token")(e2s(e)))?;
        let graph_token = self.tokens.token(GRAPH_SCOPE).await.map_err(|e| err("Graph token")(e2s(e)))?;
        let wl = &self.baseline.workload;
        let pod = {
            let cluster = self.cluster.lock().await;
            let pods = cluster.pods_of(&wl.namespace, &wl.name);
            let failing = pods.iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running"));
            failing.or(pods.first()).and_then(|p| p.metadata.name.clone())
        };
        Ok(EngineInput {
            dump_dir: dump,
            inventory,
            namespace: wl.namespace.clone(),
            pod,
            arm_endpoint: Some(self.emulator().base_url.clone()),
            ca_file: Some(ca),
            arm_token: Some(token.token),
            graph_endpoint: Some(self.emulator().base_url.clone()),
            graph_token: Some(graph_token.token),
            registry_addresses: self.operator_registry.map(|a| (self.login_server.clone(), a)).into_iter().collect(),
            azure_login: Some(crate::run::backend::AzureLogin {
                token_url: format!("{}/{}/oauth2/v2.0/token", self.emulator().base_url, self.emulator().tenant_id()),
                client_id: self.emulator().operator().client_id.clone(),
                client_secret: self.emulator().operator().client_secret.expose().to_string(),
                graph_endpoint: self.emulator().base_url.clone(),
            }),
        })
    }

    async fn remediate(&mut self, plan: &pulldoctor::Plan) -> Result<Vec<String>, BackendError> {
        // pulldoctor's own remediation code (`pulldoctor fix --apply`): the same steps, guards
        // and requests, against the emulator's ARM and Graph and this world's cluster.
        let inventory = self.emulator().export();
        let now = time::OffsetDateTime::now_utc();
        let steps =
            pulldoctor::apply::translate(&plan.actions, &pulldoctor::apply::PlanContext { inventory: &inventory, now });
        let executor = pulldoctor::apply::Executor {
            connections: pulldoctor::apply::Connections {
                arm: Some(self.exec.arm.clone()),
                graph: Some(self.exec.graph.clone()),
                kube: Some(Arc::new(kubernetes::ClusterApi::new(self.cluster.clone(), self.learned.clone()))),
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
        self.restart_workload().await?;
        Ok(done)
    }

    async fn artifacts(&mut self, dir: &Path) {
        let mut secrets: Vec<String> = self.exec.bindings.secrets().into_iter().map(str::to_string).collect();
        secrets.extend(self.learned.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned());
        let redact = |text: String| {
            secrets.iter().filter(|s| !s.is_empty()).fold(text, |t, s| t.replace(s.as_str(), "<redacted>"))
        };
        for name in ["containerd.log", "registry.log", "plugin.log"] {
            if let Ok(text) = std::fs::read_to_string(self.dir.join(name)) {
                let _ = std::fs::write(dir.join(name), redact(text));
            }
        }
        if let Some(e) = &self.emulator {
            let _ = std::fs::write(dir.join("emulator-state.json"), redact(e.export().to_json()));
        }
        let cluster = self.cluster.lock().await;
        let options = pullproof_host_kubelet::dump::DumpOptions { redact: true };
        let _ = pullproof_host_kubelet::dump::write_dump(&cluster, &dir.join("dump"), options);
    }

    async fn teardown(mut self) -> Result<(), BackendError> {
        self.shutdown().await
    }
}
