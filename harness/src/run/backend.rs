//! What a backend must do for the runner: provision a world, then observe and change it.

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::catalog::Entry;
use crate::scenario::{BackendKind, Mutation};

/// The workload's state after a sync (a pull attempt by the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The image was pulled; the pod is Running.
    Running,
    /// The pull failed. The world reports what the node said, as it said it; the scenario's
    /// `expect.message` judges it.
    Failing {
        /// The kubelet's waiting reason (`ErrImagePull`, `ImagePullBackOff`,
        /// `InvalidImageName`), or what the backend's own pull path reports.
        reason: String,
        /// The kubelet's event text (from the real runtime error).
        message: String,
    },
    /// Not scheduled or not synced yet.
    Pending(String),
}

/// What an engine gets to diagnose a world. `Debug` hides the tokens.
#[derive(Clone)]
pub struct EngineInput {
    /// The engine's own folder: its inputs, `bin/kubectl`, and its `HOME`. Nothing of the
    /// world's is readable from it.
    pub dir: Option<PathBuf>,
    /// The unprivileged user and group external engines run as (`None`: the harness's own).
    pub run_as: Option<(u32, u32)>,
    /// A `kubectl cluster-info dump --output-directory` directory.
    pub dump_dir: PathBuf,
    /// A kubeconfig with read access to the namespace and the nodes, for engines that read
    /// Kubernetes live.
    pub kubeconfig: Option<PathBuf>,
    /// An Azure inventory JSON file (ARM resource bodies).
    pub inventory: PathBuf,
    /// The namespace of the workload.
    pub namespace: String,
    /// A pod of the workload (the one whose pull fails, when it does).
    pub pod: Option<String>,
    /// The ARM endpoint, for engines that query it live.
    pub arm_endpoint: Option<String>,
    /// A PEM CA bundle to trust for that endpoint (and the Graph endpoint).
    pub ca_file: Option<PathBuf>,
    /// A bearer token for that endpoint (never logged).
    pub arm_token: Option<String>,
    /// The Microsoft Graph endpoint.
    pub graph_endpoint: Option<String>,
    /// A bearer token for Graph (never logged).
    pub graph_token: Option<String>,
    /// Where to reach registries' data plane (login server -> address), for engines that read
    /// tags and platforms live: the operator's way in, not the node's.
    pub registry_addresses: std::collections::BTreeMap<String, std::net::SocketAddr>,
    /// Client credentials for ARM and Graph at that endpoint (for engines linked in, which
    /// read Azure live with the same code they use against Azure).
    pub azure_login: Option<AzureLogin>,
}

impl std::fmt::Debug for EngineInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineInput")
            .field("dir", &self.dir)
            .field("run_as", &self.run_as)
            .field("dump_dir", &self.dump_dir)
            .field("kubeconfig", &self.kubeconfig)
            .field("inventory", &self.inventory)
            .field("namespace", &self.namespace)
            .field("pod", &self.pod)
            .field("arm_endpoint", &self.arm_endpoint)
            .field("ca_file", &self.ca_file)
            .field("graph_endpoint", &self.graph_endpoint)
            .field("registry_addresses", &self.registry_addresses)
            .field("azure_login", &self.azure_login)
            .finish_non_exhaustive()
    }
}

/// Client credentials at an Entra-style token endpoint. `Debug` hides the secret.
#[derive(Clone)]
pub struct AzureLogin {
    /// `https://HOST/TENANT/oauth2/v2.0/token`.
    pub token_url: String,
    /// The application (client) id.
    pub client_id: String,
    /// The secret.
    pub client_secret: String,
    /// The Graph endpoint.
    pub graph_endpoint: String,
}

impl std::fmt::Debug for AzureLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureLogin")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A backend error: what failed, in words a person can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl BackendError {
    /// An error from anything displayable.
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// One provisioned world (one scenario's baseline on one backend).
pub trait World: Send {
    /// Lets the node sync the workload now (one pull attempt, no backoff) and reports its state.
    fn sync(&mut self) -> impl Future<Output = Result<Health, BackendError>> + Send;
    /// Applies a mutation (a fault or an inverse).
    fn apply(&mut self, m: &Mutation) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Writes what an engine reads and says where.
    fn engine_input(&mut self) -> impl Future<Output = Result<EngineInput, BackendError>> + Send;
    /// Applies an engine's remediation plan; returns one line per applied action.
    fn remediate(&mut self, plan: &pulldoctor::Plan) -> impl Future<Output = Result<Vec<String>, BackendError>> + Send;
    /// Applies one machine-applicable action an engine only proposed, with the harness's own
    /// code (never the engine's), so that recovery can verify it. Returns what was done.
    fn apply_proposal(
        &mut self,
        action: &pulldoctor::Action,
    ) -> impl Future<Output = Result<String, BackendError>> + Send {
        let kind = super::super::scenario::ActionKind::of(action);
        async move { Err(BackendError::new(format!("this backend cannot apply a proposed {kind:?} action"))) }
    }
    /// Requests the engine's identity made and was refused (writes to ARM or Graph), as the
    /// backend saw them.
    fn engine_refusals(&self) -> Vec<String> {
        Vec::new()
    }
    /// What `fault` touched, as a finding would blame it: ARM ids (the changed resource, its
    /// parent, a role assignment's scope and principal) and `namespace/name` for Kubernetes
    /// objects. Empty: the backend cannot say, and blame is not graded.
    fn touched(&self, fault: &crate::scenario::Fault) -> Vec<String> {
        let _ = fault;
        Vec::new()
    }
    /// The typed changes (operation + ARM id) that `m` makes, for comparing a `manual` proposal
    /// with the scenario's own inverse. Empty when `m` changes no Azure resource.
    fn changes_of(&self, m: &Mutation) -> Vec<pulldoctor::plan::Change> {
        let _ = m;
        Vec::new()
    }
    /// Copies logs, events and state (secrets redacted) into `dir`.
    fn artifacts(&mut self, dir: &Path) -> impl Future<Output = ()> + Send;
    /// Tears everything down.
    fn teardown(self) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// How a person reaches this world (shell lines), for `run --keep`.
    fn access(&self) -> String {
        String::new()
    }
}

/// A backend: turns a scenario's baseline into a [`World`].
pub trait Backend: Send + Sync {
    /// The world type.
    type World: World;
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Provisions the baseline of `entry` and brings the workload up.
    fn provision(&self, entry: &Entry) -> impl Future<Output = Result<Self::World, BackendError>> + Send;
    /// The versions the backend's Kubernetes reports, for the run record.
    fn versions(&self) -> impl Future<Output = Option<super::KubernetesVersions>> + Send {
        async { None }
    }
    /// Stops what the run's worlds shared (called once, after every world is torn down).
    fn finish(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
