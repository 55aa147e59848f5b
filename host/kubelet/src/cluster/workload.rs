//! Deployments, their replica sets and pods: creation, template changes (rollouts), the
//! controllers that follow them, and the scheduler.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetSpec,
    ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, LocalObjectReference, ObjectReference, Pod, PodCondition, PodSecurityContext, PodSpec, PodStatus,
    PodTemplateSpec, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ids::template_hash;
use super::{Cluster, EventRecord, NORMAL, Reporter, WARNING, is, not_found};
use crate::error::KubeletError;
use crate::image::default_pull_policy;

const TEMPLATE_HASH: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

/// A workload as the scenarios declare it: one Deployment with one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Namespace (created if missing).
    pub namespace: String,
    /// Deployment name (also the `app` label).
    pub name: String,
    /// Container name.
    pub container: String,
    /// Image reference.
    pub image: String,
    /// Replicas (default 1).
    pub replicas: i32,
    /// `nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `imagePullSecrets` names.
    pub pull_secrets: Vec<String>,
    /// `serviceAccountName` (`default` when `None`).
    pub service_account: Option<String>,
    /// `imagePullPolicy` (defaulted from the tag when `None`, as the API server does).
    pub image_pull_policy: Option<String>,
}

impl WorkloadSpec {
    /// Deployment `namespace/name` running `image` in a container named `name`.
    pub fn new(namespace: &str, name: &str, image: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            container: name.to_owned(),
            image: image.to_owned(),
            replicas: 1,
            node_selector: BTreeMap::new(),
            pull_secrets: Vec::new(),
            service_account: None,
            image_pull_policy: None,
        }
    }

    /// With a `nodeSelector` entry.
    pub fn node_selector(mut self, key: &str, value: &str) -> Self {
        self.node_selector.insert(key.to_owned(), value.to_owned());
        self
    }

    /// With an image pull secret.
    pub fn pull_secret(mut self, name: &str) -> Self {
        self.pull_secrets.push(name.to_owned());
        self
    }

    /// With this container name.
    pub fn container(mut self, name: &str) -> Self {
        self.container = name.to_owned();
        self
    }

    /// With this many replicas.
    pub fn replicas(mut self, replicas: i32) -> Self {
        self.replicas = replicas;
        self
    }

    /// With this service account.
    pub fn service_account(mut self, name: &str) -> Self {
        self.service_account = Some(name.to_owned());
        self
    }

    fn template(&self) -> PodTemplateSpec {
        let mut template = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(app_labels(&self.name)), ..ObjectMeta::default() }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: self.container.clone(),
                    image: Some(self.image.clone()),
                    image_pull_policy: self.image_pull_policy.clone(),
                    ..Container::default()
                }],
                node_selector: (!self.node_selector.is_empty()).then(|| self.node_selector.clone()),
                image_pull_secrets: secret_refs(&self.pull_secrets),
                service_account_name: self.service_account.clone(),
                ..PodSpec::default()
            }),
        };
        default_pod_spec(template.spec.get_or_insert_with(PodSpec::default));
        template
    }
}

fn app_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), name.to_owned())])
}

fn secret_refs(names: &[String]) -> Option<Vec<LocalObjectReference>> {
    (!names.is_empty()).then(|| names.iter().map(|n| LocalObjectReference { name: n.clone() }).collect())
}

/// The API server's defaults for fields a template leaves empty.
fn default_pod_spec(spec: &mut PodSpec) {
    for container in &mut spec.containers {
        if container.image_pull_policy.is_none() {
            container.image_pull_policy =
                Some(default_pull_policy(container.image.as_deref().unwrap_or_default()).to_owned());
        }
        container.termination_message_path.get_or_insert_with(|| "/dev/termination-log".to_owned());
        container.termination_message_policy.get_or_insert_with(|| "File".to_owned());
        container.resources.get_or_insert_with(ResourceRequirements::default);
    }
    spec.restart_policy.get_or_insert_with(|| "Always".to_owned());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".to_owned());
    spec.scheduler_name.get_or_insert_with(|| "default-scheduler".to_owned());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.security_context.get_or_insert_with(PodSecurityContext::default);
}

/// Whether `meta` has a controller owner reference to `uid`.
pub(crate) fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.controller == Some(true) && o.uid == uid)
}

fn owner(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn reference(api_version: &str, kind: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

/// Whether a pod is Ready (available, with `minReadySeconds` 0).
pub(crate) fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn condition(type_: &str, status: bool, reason: &str, message: String, now: &Time) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

impl Cluster {
    /// Creates the Deployment of `spec` (its namespace too), then runs the controllers: a
    /// ReplicaSet `NAME-HASH` and pods `NAME-HASH-xxxxx` appear and are scheduled.
    pub fn create_workload(&mut self, spec: &WorkloadSpec) -> Result<(), KubeletError> {
        if self.deployment(&spec.namespace, &spec.name).is_some() {
            return Err(KubeletError::AlreadyExists {
                kind: "Deployment",
                namespace: spec.namespace.clone(),
                name: spec.name.clone(),
            });
        }
        self.ensure_namespace(&spec.namespace);
        let mut metadata = self.new_meta(Some(&spec.namespace), &spec.name);
        metadata.labels = Some(app_labels(&spec.name));
        metadata.generation = Some(1);
        let deployment = Deployment {
            metadata,
            spec: Some(DeploymentSpec {
                replicas: Some(spec.replicas),
                selector: LabelSelector { match_labels: Some(app_labels(&spec.name)), ..LabelSelector::default() },
                template: spec.template(),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".to_owned()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::String("25%".to_owned())),
                        max_unavailable: Some(IntOrString::String("25%".to_owned())),
                    }),
                }),
                revision_history_limit: Some(10),
                progress_deadline_seconds: Some(600),
                ..DeploymentSpec::default()
            }),
            status: None,
        };
        self.deployments.push(deployment);
        self.reconcile();
        Ok(())
    }

    /// Changes the pod template of deployment `namespace/name` with `change`, then rolls out
    /// (a new ReplicaSet and pods when the template changed).
    pub fn update_template(
        &mut self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut PodTemplateSpec) -> Result<(), KubeletError>,
    ) -> Result<(), KubeletError> {
        let rv = self.next_resource_version();
        let deployment = self
            .deployments
            .iter_mut()
            .find(|d| is(&d.metadata, namespace, name))
            .ok_or_else(|| not_found("Deployment", namespace, name))?;
        let spec = deployment.spec.get_or_insert_with(DeploymentSpec::default);
        let before = spec.template.clone();
        change(&mut spec.template)?;
        default_pod_spec(spec.template.spec.get_or_insert_with(PodSpec::default));
        if spec.template != before {
            deployment.metadata.generation = Some(deployment.metadata.generation.unwrap_or(1) + 1);
            deployment.metadata.resource_version = Some(rv);
        }
        self.reconcile();
        Ok(())
    }

    /// `kubectl set image deployment/NAME CONTAINER=IMAGE`.
    pub fn set_image(&mut self, namespace: &str, name: &str, container: &str, image: &str) -> Result<(), KubeletError> {
        self.update_template(namespace, name, |template| {
            let spec = template.spec.get_or_insert_with(PodSpec::default);
            let target = spec.containers.iter_mut().find(|c| c.name == container).ok_or_else(|| {
                KubeletError::Invalid(format!("deployment {namespace}/{name} has no container {container}"))
            })?;
            target.image = Some(image.to_owned());
            Ok(())
        })
    }

    /// Replaces the template's `nodeSelector` (empty removes it).
    pub fn set_node_selector(
        &mut self,
        namespace: &str,
        name: &str,
        selector: BTreeMap<String, String>,
    ) -> Result<(), KubeletError> {
        self.update_template(namespace, name, |template| {
            template.spec.get_or_insert_with(PodSpec::default).node_selector =
                (!selector.is_empty()).then_some(selector);
            Ok(())
        })
    }

    /// Replaces the template's `imagePullSecrets` (empty removes them).
    pub fn set_image_pull_secrets(
        &mut self,
        namespace: &str,
        name: &str,
        secrets: &[&str],
    ) -> Result<(), KubeletError> {
        let names: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        self.update_template(namespace, name, |template| {
            template.spec.get_or_insert_with(PodSpec::default).image_pull_secrets = secret_refs(&names);
            Ok(())
        })
    }

    /// `kubectl rollout restart`: a new ReplicaSet and pods for the same template.
    pub fn rollout_restart(&mut self, namespace: &str, name: &str) -> Result<(), KubeletError> {
        let stamp = k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", self.now()).unwrap_or_default();
        self.update_template(namespace, name, |template| {
            template
                .metadata
                .get_or_insert_with(ObjectMeta::default)
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert("kubectl.kubernetes.io/restartedAt".to_owned(), stamp);
            Ok(())
        })
    }

    /// Runs the controllers for deployment `namespace/name` (see [`Cluster::reconcile`]).
    pub fn rollout(&mut self, namespace: &str, name: &str) -> Result<(), KubeletError> {
        if self.deployment(namespace, name).is_none() {
            return Err(not_found("Deployment", namespace, name));
        }
        self.reconcile();
        Ok(())
    }

    /// Runs every controller until nothing changes: deployments (a ReplicaSet per template;
    /// old ones scaled to zero once the new one is available, or at once when they have no
    /// available pod), replica sets (pods created or deleted), the scheduler, then statuses.
    pub fn reconcile(&mut self) {
        for i in 0..self.deployments.len() {
            self.sync_deployment(i);
        }
        for i in 0..self.replica_sets.len() {
            self.sync_replica_set(i);
        }
        self.schedule();
        for i in 0..self.deployments.len() {
            self.scale_down_old(i);
        }
        self.update_statuses();
    }

    fn owned_replica_sets(&self, uid: &str) -> Vec<usize> {
        (0..self.replica_sets.len()).filter(|&i| controlled_by(&self.replica_sets[i].metadata, uid)).collect()
    }

    fn pods_of_rs(&self, uid: &str) -> Vec<usize> {
        (0..self.pods.len()).filter(|&i| controlled_by(&self.pods[i].metadata, uid)).collect()
    }

    fn sync_deployment(&mut self, index: usize) {
        let deployment = self.deployments[index].clone();
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let spec = deployment.spec.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let hash = template_hash(&spec.template, 0);
        let owned = self.owned_replica_sets(&uid);
        let max_revision = owned.iter().map(|&i| revision(&self.replica_sets[i].metadata)).max().unwrap_or(0);
        let current = owned
            .iter()
            .copied()
            .find(|&i| self.replica_sets[i].metadata.labels.as_ref().and_then(|l| l.get(TEMPLATE_HASH)) == Some(&hash));
        let new_revision = match current {
            Some(i) => {
                let rev = revision(&self.replica_sets[i].metadata);
                let rev = if rev < max_revision { max_revision + 1 } else { rev };
                let old = self.replica_sets[i].spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                let rv = self.next_resource_version();
                let rs = &mut self.replica_sets[i];
                rs.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(REVISION.to_owned(), rev.to_string());
                rs.metadata.resource_version = Some(rv);
                if old != desired {
                    rs.spec.get_or_insert_with(ReplicaSetSpec::default).replicas = Some(desired);
                    let rs_name = rs.metadata.name.clone().unwrap_or_default();
                    let verb = if desired > old { "up" } else { "down" };
                    self.scaling_event(index, &format!("Scaled {verb} replica set {rs_name} from {old} to {desired}"));
                }
                rev
            }
            None => {
                let rev = max_revision + 1;
                let rs_name = format!("{name}-{hash}");
                let mut labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
                labels.insert(TEMPLATE_HASH.to_owned(), hash.clone());
                let mut metadata = self.new_meta(Some(&namespace), &rs_name);
                metadata.labels = Some(labels.clone());
                metadata.annotations = Some(BTreeMap::from([
                    ("deployment.kubernetes.io/desired-replicas".to_owned(), desired.to_string()),
                    ("deployment.kubernetes.io/max-replicas".to_owned(), (desired + 1).to_string()),
                    (REVISION.to_owned(), rev.to_string()),
                ]));
                metadata.owner_references = Some(vec![owner("apps/v1", "Deployment", &deployment.metadata)]);
                metadata.generation = Some(1);
                let mut template = spec.template.clone();
                template.metadata.get_or_insert_with(ObjectMeta::default).labels = Some(labels.clone());
                self.replica_sets.push(ReplicaSet {
                    metadata,
                    spec: Some(ReplicaSetSpec {
                        replicas: Some(desired),
                        selector: LabelSelector { match_labels: Some(labels), ..LabelSelector::default() },
                        template: Some(template),
                        ..ReplicaSetSpec::default()
                    }),
                    status: None,
                });
                self.scaling_event(index, &format!("Scaled up replica set {rs_name} from 0 to {desired}"));
                rev
            }
        };
        let deployment = &mut self.deployments[index];
        deployment
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REVISION.to_owned(), new_revision.to_string());
    }

    fn scaling_event(&mut self, deployment: usize, message: &str) {
        let involved = reference("apps/v1", "Deployment", &self.deployments[deployment].metadata);
        self.record_event(EventRecord {
            involved,
            type_: NORMAL.to_owned(),
            reason: "ScalingReplicaSet".to_owned(),
            message: message.to_owned(),
            reporter: Reporter::controller("deployment-controller"),
        });
    }

    /// Scales old replica sets to zero when the current one is fully available, or when they
    /// have no available pod (they cannot make things worse by going away).
    fn scale_down_old(&mut self, index: usize) {
        let deployment = self.deployments[index].clone();
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let spec = deployment.spec.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let hash = template_hash(&spec.template, 0);
        let owned = self.owned_replica_sets(&uid);
        let is_current =
            |rs: &ReplicaSet| rs.metadata.labels.as_ref().and_then(|l| l.get(TEMPLATE_HASH)) == Some(&hash);
        let available = |cluster: &Cluster, rs: usize| {
            let rs_uid = cluster.replica_sets[rs].metadata.uid.clone().unwrap_or_default();
            cluster.pods_of_rs(&rs_uid).into_iter().filter(|&p| pod_ready(&cluster.pods[p])).count()
        };
        let new_available =
            owned.iter().copied().find(|&i| is_current(&self.replica_sets[i])).map_or(0, |i| available(self, i));
        for i in owned {
            if is_current(&self.replica_sets[i]) {
                continue;
            }
            let replicas = self.replica_sets[i].spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if replicas == 0 {
                continue;
            }
            if new_available >= usize::try_from(desired).unwrap_or(0) || available(self, i) == 0 {
                self.replica_sets[i].spec.get_or_insert_with(ReplicaSetSpec::default).replicas = Some(0);
                let rs_name = self.replica_sets[i].metadata.name.clone().unwrap_or_default();
                self.scaling_event(index, &format!("Scaled down replica set {rs_name} from {replicas} to 0"));
                self.sync_replica_set(i);
            }
        }
    }

    fn sync_replica_set(&mut self, index: usize) {
        let rs = self.replica_sets[index].clone();
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let desired = usize::try_from(rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)).unwrap_or(0);
        let pods = self.pods_of_rs(&uid);
        if pods.len() > desired {
            // Delete the least useful first: unscheduled, then not ready, then newest.
            let mut victims: Vec<usize> = pods;
            victims.sort_by_key(|&p| {
                let pod = &self.pods[p];
                let scheduled = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                (scheduled, pod_ready(pod), std::cmp::Reverse(pod.metadata.resource_version.clone()))
            });
            let remove: Vec<String> =
                victims[..victims.len() - desired].iter().filter_map(|&p| self.pods[p].metadata.uid.clone()).collect();
            for pod_uid in &remove {
                let Some(pod) = self.pods.iter().find(|p| p.metadata.uid.as_ref() == Some(pod_uid)) else { continue };
                let message = format!("Deleted pod: {}", pod.metadata.name.clone().unwrap_or_default());
                self.record_event(EventRecord {
                    involved: reference("apps/v1", "ReplicaSet", &rs.metadata),
                    type_: NORMAL.to_owned(),
                    reason: "SuccessfulDelete".to_owned(),
                    message,
                    reporter: Reporter::controller("replicaset-controller"),
                });
            }
            self.pods.retain(|p| !p.metadata.uid.as_ref().is_some_and(|u| remove.contains(u)));
        }
        for _ in self.pods_of_rs(&uid).len()..desired {
            self.create_pod(&rs);
        }
    }

    /// The ReplicaSet controller creating one pod, with ServiceAccount admission.
    fn create_pod(&mut self, rs: &ReplicaSet) {
        let namespace = rs.metadata.namespace.clone().unwrap_or_default();
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let mut name = format!("{rs_name}-{}", self.ids.suffix(5));
        while self.pod(&namespace, &name).is_some() {
            name = format!("{rs_name}-{}", self.ids.suffix(5));
        }
        let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
        let mut metadata = self.new_meta(Some(&namespace), &name);
        metadata.generate_name = Some(format!("{rs_name}-"));
        metadata.labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
        metadata.annotations = template.metadata.as_ref().and_then(|m| m.annotations.clone());
        metadata.owner_references = Some(vec![owner("apps/v1", "ReplicaSet", &rs.metadata)]);
        let mut spec = template.spec.unwrap_or_default();
        default_pod_spec(&mut spec);
        let account = spec.service_account_name.clone().unwrap_or_else(|| "default".to_owned());
        spec.service_account_name = Some(account.clone());
        spec.service_account = Some(account.clone());
        if spec.image_pull_secrets.as_ref().is_none_or(Vec::is_empty)
            && let Some(sa) = self.service_account(&namespace, &account)
            && sa.image_pull_secrets.as_ref().is_some_and(|s| !s.is_empty())
        {
            spec.image_pull_secrets = sa.image_pull_secrets.clone();
        }
        spec.enable_service_links.get_or_insert(true);
        spec.preemption_policy.get_or_insert_with(|| "PreemptLowerPriority".to_owned());
        spec.priority.get_or_insert(0);
        spec.tolerations.get_or_insert_with(|| {
            ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
                .into_iter()
                .map(|key| Toleration {
                    effect: Some("NoExecute".to_owned()),
                    key: Some(key.to_owned()),
                    operator: Some("Exists".to_owned()),
                    toleration_seconds: Some(300),
                    value: None,
                })
                .collect()
        });
        self.pods.push(Pod {
            metadata,
            spec: Some(spec),
            status: Some(PodStatus {
                phase: Some("Pending".to_owned()),
                qos_class: Some("BestEffort".to_owned()),
                ..PodStatus::default()
            }),
        });
        self.record_event(EventRecord {
            involved: reference("apps/v1", "ReplicaSet", &rs.metadata),
            type_: NORMAL.to_owned(),
            reason: "SuccessfulCreate".to_owned(),
            message: format!("Created pod: {name}"),
            reporter: Reporter::controller("replicaset-controller"),
        });
    }

    /// Binds every unscheduled pod to the first node whose labels match its `nodeSelector`.
    pub fn schedule(&mut self) {
        let now = Time(self.now());
        for i in 0..self.pods.len() {
            let pod = &self.pods[i];
            let Some(spec) = pod.spec.as_ref() else { continue };
            if spec.node_name.is_some() {
                continue;
            }
            let selector = spec.node_selector.clone().unwrap_or_default();
            let node = self.nodes.iter().find(|node| {
                let labels = node.metadata.labels.clone().unwrap_or_default();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            });
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let involved = super::pod_reference(pod, None);
            match node.and_then(|n| n.metadata.name.clone()) {
                Some(node_name) => {
                    let rv = self.next_resource_version();
                    let pod = &mut self.pods[i];
                    pod.spec.get_or_insert_with(PodSpec::default).node_name = Some(node_name.clone());
                    pod.metadata.resource_version = Some(rv);
                    set_pod_condition(pod, "PodScheduled", true, None, None, &now);
                    self.record_event(EventRecord {
                        involved,
                        type_: NORMAL.to_owned(),
                        reason: "Scheduled".to_owned(),
                        message: format!("Successfully assigned {namespace}/{name} to {node_name}"),
                        reporter: Reporter::EventsV1 {
                            controller: "default-scheduler".to_owned(),
                            instance: "default-scheduler".to_owned(),
                            action: "Binding".to_owned(),
                        },
                    });
                }
                None => {
                    let n = self.nodes.len();
                    let message = format!(
                        "0/{n} nodes are available: {n} node(s) didn't match Pod's node affinity/selector. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
                    );
                    let pod = &mut self.pods[i];
                    let known = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
                        .and_then(|c| c.message.clone());
                    if known.as_deref() == Some(message.as_str()) {
                        continue;
                    }
                    set_pod_condition(pod, "PodScheduled", false, Some("Unschedulable"), Some(&message), &now);
                    self.record_event(EventRecord {
                        involved,
                        type_: WARNING.to_owned(),
                        reason: "FailedScheduling".to_owned(),
                        message,
                        reporter: Reporter::EventsV1 {
                            controller: "default-scheduler".to_owned(),
                            instance: "default-scheduler".to_owned(),
                            action: "Scheduling".to_owned(),
                        },
                    });
                }
            }
        }
    }

    fn update_statuses(&mut self) {
        let now = Time(self.now());
        for i in 0..self.replica_sets.len() {
            let uid = self.replica_sets[i].metadata.uid.clone().unwrap_or_default();
            let pods = self.pods_of_rs(&uid);
            let total = i32::try_from(pods.len()).unwrap_or(i32::MAX);
            let ready = i32::try_from(pods.iter().filter(|&&p| pod_ready(&self.pods[p])).count()).unwrap_or(i32::MAX);
            let rs = &mut self.replica_sets[i];
            rs.status = Some(ReplicaSetStatus {
                replicas: total,
                fully_labeled_replicas: Some(total),
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                observed_generation: rs.metadata.generation,
                ..ReplicaSetStatus::default()
            });
        }
        for i in 0..self.deployments.len() {
            let deployment = &self.deployments[i];
            let uid = deployment.metadata.uid.clone().unwrap_or_default();
            let spec = deployment.spec.clone().unwrap_or_default();
            let desired = spec.replicas.unwrap_or(1);
            let hash = template_hash(&spec.template, 0);
            let (mut total, mut ready, mut updated) = (0, 0, 0);
            let mut current_name = String::new();
            for rs in self.replica_sets.iter().filter(|rs| controlled_by(&rs.metadata, &uid)) {
                let status = rs.status.clone().unwrap_or_default();
                total += status.replicas;
                ready += status.ready_replicas.unwrap_or(0);
                if rs.metadata.labels.as_ref().and_then(|l| l.get(TEMPLATE_HASH)) == Some(&hash) {
                    updated = status.replicas;
                    current_name = rs.metadata.name.clone().unwrap_or_default();
                }
            }
            let available = ready >= desired;
            let complete = available && updated == desired && total == desired;
            let conditions = vec![
                if available {
                    condition(
                        "Available",
                        true,
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.".into(),
                        &now,
                    )
                } else {
                    condition(
                        "Available",
                        false,
                        "MinimumReplicasUnavailable",
                        "Deployment does not have minimum availability.".into(),
                        &now,
                    )
                },
                if complete {
                    condition(
                        "Progressing",
                        true,
                        "NewReplicaSetAvailable",
                        format!("ReplicaSet \"{current_name}\" has successfully progressed."),
                        &now,
                    )
                } else {
                    condition(
                        "Progressing",
                        true,
                        "ReplicaSetUpdated",
                        format!("ReplicaSet \"{current_name}\" is progressing."),
                        &now,
                    )
                },
            ];
            let deployment = &mut self.deployments[i];
            let keep_times = deployment.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
            let conditions = conditions
                .into_iter()
                .map(|mut c| {
                    if let Some(old) = keep_times.iter().find(|o| o.type_ == c.type_ && o.status == c.status) {
                        c.last_transition_time = old.last_transition_time.clone();
                        if old.reason == c.reason {
                            c.last_update_time = old.last_update_time.clone();
                        }
                    }
                    c
                })
                .collect();
            deployment.status = Some(DeploymentStatus {
                observed_generation: deployment.metadata.generation,
                replicas: Some(total),
                updated_replicas: Some(updated),
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                unavailable_replicas: Some((desired - ready).max(0)),
                conditions: Some(conditions),
                ..DeploymentStatus::default()
            });
        }
    }
}

/// Sets (or replaces) a pod condition, keeping its transition time when the status is unchanged.
pub(crate) fn set_pod_condition(
    pod: &mut Pod,
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<&str>,
    now: &Time,
) {
    let conditions = pod.status.get_or_insert_with(PodStatus::default).conditions.get_or_insert_with(Vec::new);
    let status = if status { "True" } else { "False" }.to_owned();
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    conditions.retain(|c| c.type_ != type_);
    conditions.push(PodCondition {
        type_: type_.to_owned(),
        status,
        reason: reason.map(str::to_owned),
        message: message.map(str::to_owned),
        last_transition_time: Some(transition),
        last_probe_time: None,
        observed_generation: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeConfig;

    fn cluster() -> Cluster {
        let mut cluster = Cluster::new();
        cluster.add_node(&NodeConfig::linux("aks-nodepool1-vmss000000", "nodepool1")).unwrap();
        cluster.add_node(&NodeConfig::windows("akswin000000", "win")).unwrap();
        cluster
    }

    #[test]
    fn creates_a_deployment_replica_set_and_scheduled_pod() {
        let mut cluster = cluster();
        cluster
            .create_workload(&WorkloadSpec::new("shop", "web", "myacr.azurecr.io/shop/web:1.4.2").pull_secret("acr"))
            .unwrap();
        let rs = &cluster.replica_sets()[0];
        let rs_name = rs.metadata.name.clone().unwrap();
        assert!(rs_name.starts_with("web-"));
        assert_eq!(rs.metadata.owner_references.as_ref().unwrap()[0].kind, "Deployment");
        let pods = cluster.pods_of("shop", "web");
        assert_eq!(pods.len(), 1);
        let pod = pods[0];
        let name = pod.metadata.name.clone().unwrap();
        assert_eq!(name.len(), rs_name.len() + 6);
        assert!(name.starts_with(&format!("{rs_name}-")));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("aks-nodepool1-vmss000000"));
        assert_eq!(spec.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(spec.image_pull_secrets.as_ref().unwrap()[0].name, "acr");
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));
        let reasons: Vec<&str> = cluster.events().iter().filter_map(|e| e.reason.as_deref()).collect();
        assert_eq!(reasons, ["ScalingReplicaSet", "SuccessfulCreate", "Scheduled"]);
        assert!(cluster.events()[2].event_time.is_some());
        assert!(cluster.events()[2].source.is_none());
    }

    #[test]
    fn node_selector_and_service_account_pull_secrets() {
        let mut cluster = cluster();
        cluster.put_service_account("shop", "puller", &["sa-secret"]);
        cluster
            .create_workload(
                &WorkloadSpec::new("shop", "legacy", "myacr.azurecr.io/shop/legacy-iis:2022.1")
                    .node_selector("kubernetes.io/os", "windows")
                    .service_account("puller"),
            )
            .unwrap();
        let pod = cluster.pods_of("shop", "legacy")[0];
        assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some("akswin000000"));
        assert_eq!(pod.spec.as_ref().unwrap().image_pull_secrets.as_ref().unwrap()[0].name, "sa-secret");

        cluster
            .set_node_selector("shop", "legacy", BTreeMap::from([("agentpool".to_owned(), "nope".to_owned())]))
            .unwrap();
        let pending: Vec<&Pod> = cluster
            .pods_of("shop", "legacy")
            .into_iter()
            .filter(|p| p.spec.as_ref().unwrap().node_name.is_none())
            .collect();
        assert_eq!(pending.len(), 1);
        let condition = &pending[0].status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
        assert!(condition.message.as_deref().unwrap().starts_with("0/2 nodes are available: 2 node(s) didn't match"));
        let failed = cluster.events().iter().filter(|e| e.reason.as_deref() == Some("FailedScheduling")).count();
        cluster.reconcile();
        assert_eq!(cluster.events().iter().filter(|e| e.reason.as_deref() == Some("FailedScheduling")).count(), failed);
    }

    #[test]
    fn rollouts_replace_unavailable_pods_and_keep_available_ones() {
        let mut cluster = cluster();
        cluster.create_workload(&WorkloadSpec::new("shop", "web", "myacr.azurecr.io/shop/web:1.4.2")).unwrap();
        let first = cluster.pods_of("shop", "web")[0].metadata.name.clone().unwrap();

        // Not available yet: a new template replaces the pod at once.
        cluster.set_image("shop", "web", "web", "myacr.azurecr.io/shop/web:9.9.9").unwrap();
        let pods = cluster.pods_of("shop", "web");
        assert_eq!(pods.len(), 1);
        assert_ne!(pods[0].metadata.name.as_deref(), Some(first.as_str()));
        assert_eq!(cluster.replica_sets().len(), 2);
        assert_eq!(cluster.deployment("shop", "web").unwrap().metadata.annotations.as_ref().unwrap()[REVISION], "2");

        // Make it Ready, then change the template: the old pod stays until the new one is Ready.
        let second = pods[0].metadata.name.clone().unwrap();
        let now = Time(cluster.now());
        let mut status = pods[0].status.clone().unwrap();
        status.conditions.get_or_insert_with(Vec::new).push(PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(now),
            ..PodCondition::default()
        });
        cluster.set_pod_status("shop", "web", status.clone()).unwrap_err();
        cluster.set_pod_status("shop", &second, status.clone()).unwrap();
        cluster.set_image("shop", "web", "web", "myacr.azurecr.io/shop/web:bad").unwrap();
        let names: Vec<String> =
            cluster.pods_of("shop", "web").iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&second));
        let third = names.iter().find(|n| **n != second).unwrap().clone();
        cluster.set_pod_status("shop", &third, status).unwrap();
        let names: Vec<String> =
            cluster.pods_of("shop", "web").iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, [third]);
        let status = cluster.deployment("shop", "web").unwrap().status.clone().unwrap();
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.conditions.unwrap()[1].reason.as_deref(), Some("NewReplicaSetAvailable"));

        assert!(matches!(cluster.set_image("shop", "web", "nope", "x:1"), Err(KubeletError::Invalid(_))));
        assert!(cluster.rollout("shop", "missing").is_err());
        cluster.rollout_restart("shop", "web").unwrap();
        assert_eq!(cluster.replica_sets().len(), 4);
    }

    #[test]
    fn deleted_pods_are_replaced() {
        let mut cluster = cluster();
        cluster.create_workload(&WorkloadSpec::new("shop", "web", "myacr.azurecr.io/shop/web:1").replicas(2)).unwrap();
        let pods: Vec<String> =
            cluster.pods_of("shop", "web").iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(pods.len(), 2);
        cluster.delete_pod("shop", &pods[0]).unwrap();
        let after: Vec<String> =
            cluster.pods_of("shop", "web").iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(after.len(), 2);
        assert!(!after.contains(&pods[0]));
        assert!(cluster.delete_pod("shop", &pods[0]).is_err());
        assert!(cluster.create_workload(&WorkloadSpec::new("shop", "web", "x:1")).is_err());
    }
}
