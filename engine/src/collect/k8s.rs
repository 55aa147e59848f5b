//! Live Kubernetes evidence through kube-rs: the failing pods (a namespace, one pod, or a label
//! selector), their events, every node, and the pull secrets, service accounts and replica sets
//! those pods reference. Lists are paged (`limit` + `continue`); per-object reads run with
//! bounded concurrency. A read the caller may not make (403) becomes an
//! [`Unavailable`] entry, never an error, except for the pods themselves.

use std::collections::BTreeSet;

use azure_model::inventory::Unavailable;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret, ServiceAccount};
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

/// Waiting reasons that mean "the image could not be pulled" (as `evidence::pull_failures`).
pub const PULL_REASONS: &[&str] =
    &["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable"];

/// Above this many failing pods, events are listed once per namespace (`reason=Failed`)
/// instead of once per pod.
pub const PER_POD_EVENTS_MAX: usize = 50;

/// Which pods to look at.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The namespace (`None`: the kubeconfig context's, or `default`).
    pub namespace: Option<String>,
    /// Every namespace (ignores `namespace`).
    pub all_namespaces: bool,
    /// One pod by name (in `namespace`).
    pub pod: Option<String>,
    /// A label selector (`app=web,tier!=db`).
    pub selector: Option<String>,
}

/// Tuning.
#[derive(Debug, Clone, Copy)]
pub struct KubeOptions {
    /// Page size of list calls.
    pub page_size: u32,
    /// Concurrent per-object reads.
    pub concurrency: usize,
}

impl Default for KubeOptions {
    fn default() -> Self {
        Self { page_size: 500, concurrency: 8 }
    }
}

/// What was collected. `Debug` never prints secret values (as for [`crate::Evidence`]).
#[derive(Default)]
pub struct KubeEvidence {
    /// Pods with a container waiting on its image (or the one pod asked for).
    pub pods: Vec<Pod>,
    /// Their events.
    pub events: Vec<Event>,
    /// All nodes.
    pub nodes: Vec<Node>,
    /// Referenced pull secrets.
    pub secrets: Vec<Secret>,
    /// The pods' service accounts.
    pub service_accounts: Vec<ServiceAccount>,
    /// The pods' owning replica sets.
    pub replica_sets: Vec<ReplicaSet>,
    /// Reads that were refused or failed.
    pub unavailable: Vec<Unavailable>,
    /// API requests made.
    pub requests: u64,
}

impl std::fmt::Debug for KubeEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::evidence::RedactedSecret;
        f.debug_struct("KubeEvidence")
            .field("pods", &self.pods)
            .field("events", &self.events)
            .field("nodes", &self.nodes)
            .field("secrets", &self.secrets.iter().map(RedactedSecret).collect::<Vec<_>>())
            .field("service_accounts", &self.service_accounts)
            .field("replica_sets", &self.replica_sets)
            .field("unavailable", &self.unavailable)
            .field("requests", &self.requests)
            .finish()
    }
}

/// Why Kubernetes evidence could not be collected at all.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No kubeconfig and no in-cluster configuration.
    #[error("cannot configure a Kubernetes client: {0}")]
    Config(String),
    /// The pods could not be read.
    #[error("cannot read pods ({what}): {source}")]
    Pods {
        /// Which.
        what: String,
        /// Why.
        source: kube::Error,
    },
}

/// A client from kubeconfig (`KUBECONFIG`, `~/.kube/config`, optional `context`), else the
/// in-cluster service account, as kubectl finds them.
pub async fn client(context: Option<&str>) -> Result<kube::Client, KubeError> {
    let config = match context {
        Some(ctx) => {
            let opts = kube::config::KubeConfigOptions { context: Some(ctx.to_string()), ..Default::default() };
            kube::Config::from_kubeconfig(&opts).await.map_err(|e| KubeError::Config(e.to_string()))?
        }
        None => kube::Config::infer().await.map_err(|e| KubeError::Config(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))
}

/// Whether a pod has a container waiting on its image.
pub fn is_failing(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else { return false };
    status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten()).any(|cs| {
        cs.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            .is_some_and(|r| PULL_REASONS.contains(&r))
    })
}

/// The HTTP status of a kube error, when the API server answered.
pub fn status_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn unavailable(what: String, e: &kube::Error) -> Unavailable {
    let reason = match e {
        kube::Error::Api(s) => {
            format!("{} {}: {}", s.code, if s.reason.is_empty() { "Error" } else { &s.reason }, s.message)
        }
        other => other.to_string(),
    };
    Unavailable { what: format!("kubernetes: {what}"), reason }
}

struct Collector {
    client: kube::Client,
    opts: KubeOptions,
    requests: std::sync::atomic::AtomicU64,
}

impl Collector {
    fn count(&self) {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lists every page.
    async fn list_all<K>(&self, api: &Api<K>, base: ListParams) -> Result<Vec<K>, kube::Error>
    where
        K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut lp = base.clone().limit(self.opts.page_size);
            if let Some(t) = token.take() {
                lp = lp.continue_token(&t);
            }
            self.count();
            let page = api.list(&lp).await?;
            out.extend(page.items);
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => token = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// GETs each `(namespace, name)`; 404s are dropped, other errors become `Unavailable`.
    async fn get_each<K>(&self, kind: &str, keys: BTreeSet<(String, String)>) -> (Vec<K>, Vec<Unavailable>)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let results: Vec<_> = futures::stream::iter(keys)
            .map(|(ns, name)| async move {
                self.count();
                let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
                (ns.clone(), name.clone(), api.get(&name).await)
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (ns, name, r) in results {
            match r {
                Ok(o) => found.push(o),
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => missing.push(unavailable(format!("{kind} {ns}/{name}"), &e)),
            }
        }
        (found, missing)
    }
}

/// Collects the Kubernetes evidence for `sel`.
pub async fn collect(client: kube::Client, sel: &Selection, opts: KubeOptions) -> Result<KubeEvidence, KubeError> {
    let c = Collector { client: client.clone(), opts, requests: 0.into() };
    let namespace = sel.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
    let mut out = KubeEvidence::default();

    // Pods.
    let pods: Vec<Pod> = match &sel.pod {
        Some(name) => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            c.count();
            let pod = api
                .get(name)
                .await
                .map_err(|source| KubeError::Pods { what: format!("pod {namespace}/{name}"), source })?;
            vec![pod]
        }
        None => {
            let api: Api<Pod> =
                if sel.all_namespaces { Api::all(client.clone()) } else { Api::namespaced(client.clone(), &namespace) };
            let mut lp = ListParams::default();
            if let Some(s) = &sel.selector {
                lp = lp.labels(s);
            }
            let what = if sel.all_namespaces { "all namespaces".to_string() } else { format!("namespace {namespace}") };
            c.list_all(&api, lp)
                .await
                .map_err(|source| KubeError::Pods { what, source })?
                .into_iter()
                .filter(is_failing)
                .collect()
        }
    };

    let ns_of = |p: &Pod| p.metadata.namespace.clone().unwrap_or_else(|| namespace.clone());
    let name_of = |p: &Pod| p.metadata.name.clone().unwrap_or_default();

    // Events: per pod (field selector on involvedObject), or per namespace when many pods fail.
    let events = async {
        if pods.len() <= PER_POD_EVENTS_MAX {
            let per_pod: Vec<_> = futures::stream::iter(pods.iter().map(|p| (ns_of(p), name_of(p))))
                .map(|(ns, name)| {
                    let c = &c;
                    async move {
                        let api: Api<Event> = Api::namespaced(c.client.clone(), &ns);
                        let lp = ListParams::default().fields(&format!(
                            "involvedObject.kind=Pod,involvedObject.name={name},involvedObject.namespace={ns}"
                        ));
                        (format!("events of pod {ns}/{name}"), c.list_all(&api, lp).await)
                    }
                })
                .buffer_unordered(opts.concurrency.max(1))
                .collect()
                .await;
            per_pod
        } else {
            let namespaces: BTreeSet<String> = pods.iter().map(ns_of).collect();
            futures::stream::iter(namespaces)
                .map(|ns| {
                    let c = &c;
                    async move {
                        let api: Api<Event> = Api::namespaced(c.client.clone(), &ns);
                        let lp = ListParams::default().fields("involvedObject.kind=Pod,reason=Failed");
                        (format!("events in namespace {ns}"), c.list_all(&api, lp).await)
                    }
                })
                .buffer_unordered(opts.concurrency.max(1))
                .collect::<Vec<_>>()
                .await
        }
    };

    let nodes = async {
        let api: Api<Node> = Api::all(client.clone());
        c.list_all(&api, ListParams::default()).await
    };

    // Service accounts first: their imagePullSecrets name more secrets.
    let sa_keys: BTreeSet<(String, String)> = pods
        .iter()
        .map(|p| {
            let sa = p.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
            (ns_of(p), sa)
        })
        .collect();
    let rs_keys: BTreeSet<(String, String)> = pods
        .iter()
        .flat_map(|p| {
            let ns = ns_of(p);
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|o| o.kind == "ReplicaSet")
                .map(move |o| (ns.clone(), o.name.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let sas_and_rs = async {
        let sas = c.get_each::<ServiceAccount>("service account", sa_keys).await;
        let rs = c.get_each::<ReplicaSet>("replica set", rs_keys).await;
        (sas, rs)
    };

    let (events, nodes, ((sas, sa_missing), (rs, rs_missing))) = futures::join!(events, nodes, sas_and_rs);

    let mut secret_keys: BTreeSet<(String, String)> = BTreeSet::new();
    for p in &pods {
        let ns = ns_of(p);
        for r in p.spec.as_ref().and_then(|s| s.image_pull_secrets.as_ref()).into_iter().flatten() {
            secret_keys.insert((ns.clone(), r.name.clone()));
        }
        let sa = p.spec.as_ref().and_then(|s| s.service_account_name.as_deref()).unwrap_or("default");
        if let Some(sa) = sas
            .iter()
            .find(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()) && s.metadata.name.as_deref() == Some(sa))
        {
            for r in sa.image_pull_secrets.iter().flatten() {
                secret_keys.insert((ns.clone(), r.name.clone()));
            }
        }
    }
    let (secrets, secret_missing) = c.get_each::<Secret>("secret", secret_keys).await;

    for (what, r) in events {
        match r {
            Ok(evs) => out.events.extend(evs),
            Err(e) => out.unavailable.push(unavailable(what, &e)),
        }
    }
    match nodes {
        Ok(n) => out.nodes = n,
        Err(e) => out.unavailable.push(unavailable("nodes".into(), &e)),
    }
    out.pods = pods;
    out.service_accounts = sas;
    out.replica_sets = rs;
    // Only docker config secrets are kept (nothing else is ever read).
    out.secrets = secrets
        .into_iter()
        .filter(|s| {
            matches!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson" | "kubernetes.io/dockercfg"))
                || s.data.as_ref().is_some_and(|d| d.contains_key(".dockerconfigjson") || d.contains_key(".dockercfg"))
        })
        .collect();
    out.unavailable.extend(sa_missing);
    out.unavailable.extend(rs_missing);
    out.unavailable.extend(secret_missing);
    out.requests = c.requests.load(std::sync::atomic::Ordering::Relaxed);
    Ok(out)
}

/// The `azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/NAME/virtualMachines/N`
/// provider id of a node, parsed: `(subscription, resource group, scale set id)`.
pub fn parse_provider_id(provider_id: &str) -> Option<(String, String, String)> {
    let rest = provider_id.strip_prefix("azure://")?;
    let id = azure_model::ResourceId::parse(rest).ok()?;
    let sub = id.subscription()?.to_string();
    let rg = id.resource_group()?.to_string();
    let lower = rest.to_ascii_lowercase();
    let vmss = lower
        .find("/virtualmachines/")
        .map(|i| rest[..i].to_string())
        .filter(|v| v.to_ascii_lowercase().contains("/virtualmachinescalesets/"))
        .unwrap_or_else(|| rest.to_string());
    Some((sub, rg, vmss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        let (s, rg, vmss) = parse_provider_id("azure:///subscriptions/S1/resourceGroups/MC_rg_aks_westeurope/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-123-vmss/virtualMachines/0").unwrap();
        assert_eq!((s.as_str(), rg.as_str()), ("S1", "MC_rg_aks_westeurope"));
        assert!(vmss.ends_with("virtualMachineScaleSets/aks-nodepool1-123-vmss"));
        assert!(parse_provider_id("kind://docker/kind/kind-control-plane").is_none());
        assert!(parse_provider_id("azure:///nothing").is_none());
    }
}
