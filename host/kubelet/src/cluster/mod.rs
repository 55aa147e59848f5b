//! An in-memory Kubernetes object store with k8s-openapi types, and the few controllers image
//! pulls depend on: the Deployment and ReplicaSet controllers (rollouts), ServiceAccount
//! admission (pull secrets), a trivial scheduler, and an event recorder that aggregates
//! repeats like client-go's correlator.
//!
//! There is no API server: callers change the world through [`Cluster`]'s methods and read it
//! back through its accessors or a [`crate::dump`].

mod ids;
mod node;
mod workload;

pub use node::NodeConfig;
pub use workload::WorkloadSpec;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    Event, EventSource, LocalObjectReference, Node, ObjectReference, Pod, PodStatus, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::clock::{Clock, SystemClock};
use crate::error::KubeletError;
use ids::Ids;

/// The namespaces every cluster has.
const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// `Normal` or `Warning`.
pub const NORMAL: &str = "Normal";
/// `Warning`.
pub const WARNING: &str = "Warning";

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The object the event is about (see [`pod_reference`]).
    pub involved: ObjectReference,
    /// [`NORMAL`] or [`WARNING`].
    pub type_: String,
    /// `Failed`, `BackOff`, `Pulling`, ...
    pub reason: String,
    /// The message.
    pub message: String,
    /// Who reports it.
    pub reporter: Reporter,
}

/// Who writes an event, which decides its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporter {
    /// A core/v1 recorder (kubelet, controllers): `source.component` (+ `source.host`),
    /// `firstTimestamp`/`lastTimestamp`/`count`, identical events aggregated.
    Core {
        /// `kubelet`, `replicaset-controller`, ...
        component: String,
        /// The node, for the kubelet.
        host: Option<String>,
    },
    /// An `events.k8s.io/v1` recorder (the scheduler), as core/v1 shows it: `eventTime`,
    /// `reportingComponent`/`reportingInstance`, `action`, no `source` or count.
    EventsV1 {
        /// `default-scheduler`.
        controller: String,
        /// `default-scheduler-NODE`.
        instance: String,
        /// `Scheduling`, `Binding`.
        action: String,
    },
}

impl Reporter {
    /// The kubelet of `node`.
    pub fn kubelet(node: &str) -> Self {
        Reporter::Core { component: "kubelet".to_owned(), host: Some(node.to_owned()) }
    }

    /// A controller of the controller manager (`replicaset-controller`, ...).
    pub fn controller(component: &str) -> Self {
        Reporter::Core { component: component.to_owned(), host: None }
    }
}

/// A reference to `pod` for an event, with `fieldPath` (`spec.containers{app}`) for
/// container events.
pub fn pod_reference(pod: &Pod, field_path: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path,
    }
}

/// The store.
#[derive(Debug)]
pub struct Cluster {
    clock: Arc<dyn Clock>,
    ids: Ids,
    resource_version: u64,
    namespaces: BTreeSet<String>,
    nodes: Vec<Node>,
    deployments: Vec<Deployment>,
    replica_sets: Vec<ReplicaSet>,
    pods: Vec<Pod>,
    secrets: Vec<Secret>,
    service_accounts: Vec<ServiceAccount>,
    events: Vec<Event>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `meta` is `namespace/name`.
fn is(meta: &ObjectMeta, namespace: &str, name: &str) -> bool {
    meta.namespace.as_deref() == Some(namespace) && meta.name.as_deref() == Some(name)
}

impl Cluster {
    /// An empty cluster (built-in namespaces with their `default` service accounts) on the
    /// system clock, with a fixed seed for names and uids.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty cluster on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let mut cluster = Self {
            clock,
            ids: Ids::new(0x5eed),
            resource_version: 1000,
            namespaces: BTreeSet::new(),
            nodes: Vec::new(),
            deployments: Vec::new(),
            replica_sets: Vec::new(),
            pods: Vec::new(),
            secrets: Vec::new(),
            service_accounts: Vec::new(),
            events: Vec::new(),
        };
        for namespace in BUILTIN_NAMESPACES {
            cluster.ensure_namespace(namespace);
        }
        cluster
    }

    /// Uses `seed` for generated names and uids from now on (different clusters, different
    /// names).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.ids = Ids::new(seed);
        self
    }

    /// The cluster's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// The current resource version (of the last change).
    pub fn resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    /// Metadata for a new object.
    pub(crate) fn new_meta(&mut self, namespace: Option<&str>, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespace.map(str::to_owned),
            uid: Some(self.ids.uid()),
            resource_version: Some(self.next_resource_version()),
            creation_timestamp: Some(Time(self.now())),
            ..ObjectMeta::default()
        }
    }

    /// Creates `namespace` (and its `default` service account) if it does not exist.
    pub fn ensure_namespace(&mut self, namespace: &str) {
        if self.namespaces.insert(namespace.to_owned()) {
            let meta = self.new_meta(Some(namespace), "default");
            self.service_accounts.push(ServiceAccount { metadata: meta, ..ServiceAccount::default() });
        }
    }

    /// Every namespace.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(String::as_str)
    }

    // -- nodes --------------------------------------------------------------------------------

    /// Adds a node (see [`NodeConfig`]) and schedules pending pods.
    pub fn add_node(&mut self, config: &NodeConfig) -> Result<(), KubeletError> {
        if self.node(&config.name).is_some() {
            return Err(KubeletError::AlreadyExists {
                kind: "Node",
                namespace: String::new(),
                name: config.name.clone(),
            });
        }
        let meta = self.new_meta(None, &config.name);
        let node = config.to_node(meta, self.now(), self.nodes.len());
        self.nodes.push(node);
        self.reconcile();
        Ok(())
    }

    /// Every node, in the order added (the scheduler's order).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name))
    }

    // -- secrets and service accounts ----------------------------------------------------------

    /// Creates or replaces a `kubernetes.io/dockerconfigjson` secret for one registry, as
    /// `kubectl create secret docker-registry NAME --docker-server HOST --docker-username USER
    /// --docker-password PASS` writes it.
    pub fn put_secret(&mut self, namespace: &str, name: &str, host: &str, username: &str, password: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let config = serde_json::json!({"auths": {host: {"username": username, "password": password, "auth": auth}}});
        let secret = Secret {
            type_: Some("kubernetes.io/dockerconfigjson".to_owned()),
            data: Some(BTreeMap::from([(".dockerconfigjson".to_owned(), ByteString(config.to_string().into_bytes()))])),
            ..Secret::default()
        };
        self.put_secret_object(namespace, name, secret);
    }

    /// Creates or replaces a secret with the given content (metadata is filled in).
    pub fn put_secret_object(&mut self, namespace: &str, name: &str, mut secret: Secret) {
        self.ensure_namespace(namespace);
        let existing = self.secrets.iter().position(|s| is(&s.metadata, namespace, name));
        let mut meta = match existing {
            Some(i) => {
                let mut meta = self.secrets[i].metadata.clone();
                meta.resource_version = Some(self.next_resource_version());
                meta
            }
            None => self.new_meta(Some(namespace), name),
        };
        meta.labels = secret.metadata.labels.take().or(meta.labels);
        meta.annotations = secret.metadata.annotations.take().or(meta.annotations);
        secret.metadata = meta;
        match existing {
            Some(i) => self.secrets[i] = secret,
            None => self.secrets.push(secret),
        }
    }

    /// Deletes a secret; whether it existed.
    pub fn delete_secret(&mut self, namespace: &str, name: &str) -> bool {
        let before = self.secrets.len();
        self.secrets.retain(|s| !is(&s.metadata, namespace, name));
        before != self.secrets.len()
    }

    /// Every secret.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// The secret `namespace/name`.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.iter().find(|s| is(&s.metadata, namespace, name))
    }

    /// Creates or replaces a service account with these `imagePullSecrets`. Pods created
    /// afterwards without pull secrets of their own get them (ServiceAccount admission).
    pub fn put_service_account(&mut self, namespace: &str, name: &str, pull_secrets: &[&str]) {
        self.ensure_namespace(namespace);
        let refs = (!pull_secrets.is_empty())
            .then(|| pull_secrets.iter().map(|n| LocalObjectReference { name: (*n).to_owned() }).collect());
        match self.service_accounts.iter().position(|s| is(&s.metadata, namespace, name)) {
            Some(i) => {
                let rv = self.next_resource_version();
                let sa = &mut self.service_accounts[i];
                sa.image_pull_secrets = refs;
                sa.metadata.resource_version = Some(rv);
            }
            None => {
                let metadata = self.new_meta(Some(namespace), name);
                self.service_accounts.push(ServiceAccount {
                    metadata,
                    image_pull_secrets: refs,
                    ..ServiceAccount::default()
                });
            }
        }
    }

    /// Every service account.
    pub fn service_accounts(&self) -> &[ServiceAccount] {
        &self.service_accounts
    }

    /// The service account `namespace/name`.
    pub fn service_account(&self, namespace: &str, name: &str) -> Option<&ServiceAccount> {
        self.service_accounts.iter().find(|s| is(&s.metadata, namespace, name))
    }

    // -- workloads ------------------------------------------------------------------------------

    /// Every deployment.
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// The deployment `namespace/name`.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| is(&d.metadata, namespace, name))
    }

    /// Every replica set.
    pub fn replica_sets(&self) -> &[ReplicaSet] {
        &self.replica_sets
    }

    /// Every pod.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// The pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| is(&p.metadata, namespace, name))
    }

    /// The pods of deployment `namespace/name` (through its replica sets), oldest first.
    pub fn pods_of(&self, namespace: &str, deployment: &str) -> Vec<&Pod> {
        let Some(uid) = self.deployment(namespace, deployment).and_then(|d| d.metadata.uid.as_deref()) else {
            return Vec::new();
        };
        let rs_uids: Vec<&str> = self
            .replica_sets
            .iter()
            .filter(|rs| workload::controlled_by(&rs.metadata, uid))
            .filter_map(|rs| rs.metadata.uid.as_deref())
            .collect();
        self.pods.iter().filter(|p| rs_uids.iter().any(|rs| workload::controlled_by(&p.metadata, rs))).collect()
    }

    /// Writes a pod's status (what the kubelet does), then runs the controllers.
    pub fn set_pod_status(&mut self, namespace: &str, name: &str, status: PodStatus) -> Result<(), KubeletError> {
        let rv = self.next_resource_version();
        let pod = self
            .pods
            .iter_mut()
            .find(|p| is(&p.metadata, namespace, name))
            .ok_or_else(|| not_found("Pod", namespace, name))?;
        pod.status = Some(status);
        pod.metadata.resource_version = Some(rv);
        self.reconcile();
        Ok(())
    }

    /// Deletes a pod at once (as `kubectl delete pod --grace-period=0 --force`); its replica
    /// set replaces it.
    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> Result<(), KubeletError> {
        let before = self.pods.len();
        self.pods.retain(|p| !is(&p.metadata, namespace, name));
        if before == self.pods.len() {
            return Err(not_found("Pod", namespace, name));
        }
        self.reconcile();
        Ok(())
    }

    // -- events ---------------------------------------------------------------------------------

    /// Every event, in the order first recorded.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The events about pod `namespace/name` (any container).
    pub fn pod_events(&self, namespace: &str, name: &str) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| {
                let o = &e.involved_object;
                o.kind.as_deref() == Some("Pod")
                    && o.namespace.as_deref() == Some(namespace)
                    && o.name.as_deref() == Some(name)
            })
            .collect()
    }

    /// Records an event. Core events identical to an earlier one (same object, type, reason,
    /// message and source) increment its `count` and move its `lastTimestamp`, as client-go's
    /// correlator does.
    pub fn record_event(&mut self, record: EventRecord) {
        let now = self.now();
        let namespace = record.involved.namespace.clone().unwrap_or_else(|| "default".to_owned());
        if let Reporter::Core { component, host } = &record.reporter {
            let source = EventSource { component: Some(component.clone()), host: host.clone() };
            let same = |e: &Event| {
                let (a, b) = (&e.involved_object, &record.involved);
                a.kind == b.kind
                    && a.namespace == b.namespace
                    && a.name == b.name
                    && a.uid == b.uid
                    && a.field_path == b.field_path
                    && e.type_.as_deref() == Some(record.type_.as_str())
                    && e.reason.as_deref() == Some(record.reason.as_str())
                    && e.message.as_deref() == Some(record.message.as_str())
                    && e.source.as_ref() == Some(&source)
            };
            if let Some(i) = self.events.iter().position(same) {
                let rv = self.next_resource_version();
                let event = &mut self.events[i];
                event.count = Some(event.count.unwrap_or(1) + 1);
                event.last_timestamp = Some(Time(now));
                event.metadata.resource_version = Some(rv);
                return;
            }
            let metadata = self.event_meta(&namespace, &record.involved, now);
            self.events.push(Event {
                metadata,
                involved_object: record.involved,
                type_: Some(record.type_),
                reason: Some(record.reason),
                message: Some(record.message),
                source: Some(source),
                first_timestamp: Some(Time(now)),
                last_timestamp: Some(Time(now)),
                count: Some(1),
                reporting_component: Some(component.clone()),
                reporting_instance: Some(host.clone().unwrap_or_default()),
                ..Event::default()
            });
        } else if let Reporter::EventsV1 { controller, instance, action } = &record.reporter {
            let metadata = self.event_meta(&namespace, &record.involved, now);
            self.events.push(Event {
                metadata,
                involved_object: record.involved,
                type_: Some(record.type_),
                reason: Some(record.reason),
                message: Some(record.message),
                event_time: Some(MicroTime(now)),
                action: Some(action.clone()),
                reporting_component: Some(controller.clone()),
                reporting_instance: Some(instance.clone()),
                ..Event::default()
            });
        }
    }

    /// `NAME.HEXNANOS`, unique.
    fn event_meta(&mut self, namespace: &str, involved: &ObjectReference, now: Timestamp) -> ObjectMeta {
        let base = involved.name.clone().unwrap_or_default();
        let mut nanos = now.as_nanosecond();
        let mut name = format!("{base}.{nanos:x}");
        while self.events.iter().any(|e| e.metadata.name.as_deref() == Some(name.as_str())) {
            nanos += 1;
            name = format!("{base}.{nanos:x}");
        }
        self.new_meta(Some(namespace), &name)
    }
}

pub(crate) fn not_found(kind: &'static str, namespace: &str, name: &str) -> KubeletError {
    KubeletError::NotFound { kind, namespace: namespace.to_owned(), name: name.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    #[test]
    fn secrets_are_written_like_kubectl_does() {
        let mut cluster = Cluster::new();
        cluster.put_secret("app", "acr", "myacr.azurecr.io", "myacr", "p@ss");
        let secret = cluster.secret("app", "acr").unwrap();
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        let body: serde_json::Value =
            serde_json::from_slice(&secret.data.as_ref().unwrap()[".dockerconfigjson"].0).unwrap();
        assert_eq!(body["auths"]["myacr.azurecr.io"]["username"], "myacr");
        assert_eq!(body["auths"]["myacr.azurecr.io"]["auth"], "bXlhY3I6cEBzcw==");
        let uid = secret.metadata.uid.clone();
        cluster.put_secret("app", "acr", "myacr.azurecr.io", "myacr", "new");
        assert_eq!(cluster.secrets().len(), 1);
        assert_eq!(cluster.secret("app", "acr").unwrap().metadata.uid, uid);
        assert!(cluster.delete_secret("app", "acr"));
        assert!(!cluster.delete_secret("app", "acr"));
        assert!(cluster.service_account("app", "default").is_some());
        assert!(cluster.namespaces().any(|n| n == "kube-system"));
    }

    #[test]
    fn identical_core_events_are_counted() {
        let clock = ManualClock::new(Timestamp::from_second(1_700_000_000).unwrap());
        let mut cluster = Cluster::with_clock(Arc::new(clock.clone()));
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("app".into()),
                uid: Some("u".into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        let record = EventRecord {
            involved: pod_reference(&pod, Some("spec.containers{app}".into())),
            type_: NORMAL.into(),
            reason: "BackOff".into(),
            message: "Back-off pulling image \"x:1\"".into(),
            reporter: Reporter::kubelet("node0"),
        };
        cluster.record_event(record.clone());
        clock.advance(Duration::from_secs(20));
        cluster.record_event(record.clone());
        cluster.record_event(EventRecord { message: "other".into(), ..record });
        let events = cluster.pod_events("app", "p");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].count, Some(2));
        assert_eq!(events[0].first_timestamp.as_ref().unwrap().0.as_second(), 1_700_000_000);
        assert_eq!(events[0].last_timestamp.as_ref().unwrap().0.as_second(), 1_700_000_020);
        assert_eq!(events[0].source.as_ref().unwrap().host.as_deref(), Some("node0"));
        assert!(events[0].metadata.name.as_deref().unwrap().starts_with("p."));
        assert_ne!(events[0].metadata.name, events[1].metadata.name);
    }
}
