//! The failing pulls: one [`PullFailure`] per container that waits on its image.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use time::OffsetDateTime;

use super::{Evidence, PullSecret};
use crate::finding::PodRef;
use crate::plan::WorkloadRef;
use crate::symptom::{ImageRef, MessageKind, Symptom};

/// Waiting reasons that mean "the image could not be pulled".
const PULL_REASONS: &[&str] =
    &["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable"];

/// A node's platform, from its well-known labels (falling back to `status.nodeInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodePlatform {
    /// `linux` or `windows`.
    pub os: Option<String>,
    /// `amd64`, `arm64`.
    pub arch: Option<String>,
    /// The AKS node pool (`agentpool` / `kubernetes.azure.com/agentpool` label).
    pub pool: Option<String>,
}

impl NodePlatform {
    /// Reads a node.
    pub fn of(node: &Node) -> Self {
        let labels = node.metadata.labels.as_ref();
        let label = |k: &str| labels.and_then(|l| l.get(k)).cloned();
        let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
        Self {
            os: label("kubernetes.io/os").or_else(|| info.map(|i| i.operating_system.clone())),
            arch: label("kubernetes.io/arch").or_else(|| info.map(|i| i.architecture.clone())),
            pool: label("kubernetes.azure.com/agentpool").or_else(|| label("agentpool")),
        }
    }
}

/// A container that cannot start because its image cannot be pulled.
#[derive(Debug, Clone)]
pub struct PullFailure {
    /// The pod and container.
    pub pod: PodRef,
    /// The parsed image reference (from the spec).
    pub image: Option<ImageRef>,
    /// What the most telling message says.
    pub symptom: Symptom,
    /// That message, as the kubelet wrote it.
    pub message: String,
    /// The node the pod is scheduled on.
    pub node: Option<String>,
    /// That node's platform.
    pub platform: NodePlatform,
    /// The pod's node selector.
    pub node_selector: BTreeMap<String, String>,
    /// Pull secrets named by the pod (and its service account), in the kubelet's order.
    pub pull_secret_names: Vec<String>,
    /// Those that exist and decode, with their logins.
    pub pull_secrets: Vec<PullSecret>,
    /// Names the pod references that do not exist (`FailedToRetrieveImagePullSecret`).
    pub missing_pull_secrets: Vec<String>,
    /// The workload that owns the pod.
    pub workload: WorkloadRef,
    /// When the pod's pulls began failing: the earliest `Failed` event's first timestamp.
    pub first_seen: Option<OffsetDateTime>,
    /// When they were last seen failing: the latest `Failed` event's last timestamp.
    pub last_seen: Option<OffsetDateTime>,
}

impl PullFailure {
    /// The registry host the pull went to.
    pub fn registry_host(&self) -> Option<&str> {
        self.image.as_ref().map(|i| i.registry.as_str())
    }
}

type PodKey<'a> = (&'a str, &'a str);

/// Finds every failing pull in `evidence`. Linear in pods + events.
pub fn pull_failures(evidence: &Evidence) -> Vec<PullFailure> {
    // The newest `Failed to pull image` message per pod, and per pod+image.
    let mut failed: HashMap<PodKey<'_>, Vec<&Event>> = HashMap::new();
    for ev in &evidence.events {
        let obj = &ev.involved_object;
        if obj.kind.as_deref() != Some("Pod") {
            continue;
        }
        let (Some(ns), Some(name)) = (obj.namespace.as_deref(), obj.name.as_deref()) else { continue };
        failed.entry((ns, name)).or_default().push(ev);
    }
    let nodes: HashMap<&str, &Node> =
        evidence.nodes.iter().filter_map(|n| n.metadata.name.as_deref().map(|name| (name, n))).collect();

    let mut cache = SymptomCache::new();
    let mut out = Vec::new();
    for pod in &evidence.pods {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let Some(status) = pod.status.as_ref() else { continue };
        let spec = pod.spec.as_ref();
        let statuses =
            status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
        let events = failed.get(&(ns, name)).map(Vec::as_slice).unwrap_or_default();
        for cs in statuses {
            let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else { continue };
            let reason = waiting.reason.as_deref().unwrap_or_default();
            if !PULL_REASONS.contains(&reason) {
                continue;
            }
            let spec_image = spec
                .and_then(|s| {
                    s.init_containers
                        .iter()
                        .flatten()
                        .chain(s.containers.iter())
                        .find(|c| c.name == cs.name)
                        .and_then(|c| c.image.clone())
                })
                .unwrap_or_else(|| cs.image.clone());
            let (message, symptom) = best_message(waiting.message.as_deref(), events, &spec_image, &mut cache);
            let node = spec.and_then(|s| s.node_name.clone());
            let platform = node.as_deref().and_then(|n| nodes.get(n)).map(|n| NodePlatform::of(n)).unwrap_or_default();
            let (pull_secret_names, pull_secrets, missing) = secrets_of(evidence, pod, ns);
            out.push(PullFailure {
                pod: PodRef {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    container: cs.name.clone(),
                    image: spec_image.clone(),
                },
                image: ImageRef::parse(&spec_image).or_else(|| symptom.image.clone()),
                symptom,
                message,
                node,
                platform,
                node_selector: spec.and_then(|s| s.node_selector.clone()).unwrap_or_default(),
                pull_secret_names,
                pull_secrets,
                missing_pull_secrets: missing,
                workload: owner_of(evidence, pod, ns, name),
                first_seen: first_failed(events),
                last_seen: failed_events(events)
                    .map(event_time)
                    .filter(|t| *t > 0)
                    .max()
                    .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
            });
        }
    }
    out
}

/// Symptoms already parsed, by message text: the kubelet repeats the same text for every pod
/// of a workload, so a large dump has far fewer distinct messages than events.
type SymptomCache<'a> = HashMap<&'a str, Symptom>;

/// Picks the message that says the most: the newest `Failed to pull image` event for this
/// image, else the waiting message. Events are parsed newest first and only until one is usable.
fn best_message<'a>(
    waiting: Option<&str>,
    events: &[&'a Event],
    image: &str,
    cache: &mut SymptomCache<'a>,
) -> (String, Symptom) {
    let spec = ImageRef::parse(image);
    let usable = |symptom: &Symptom| {
        !symptom.attempts.is_empty()
            && !matches!(symptom.kind, MessageKind::BackOff | MessageKind::PullSecretMissing)
            && match (&symptom.image, &spec) {
                (Some(img), Some(spec)) => img == spec,
                _ => true,
            }
    };
    let mut failed: Vec<(&'a str, i64)> = events
        .iter()
        .filter(|ev| ev.reason.as_deref() == Some("Failed"))
        .filter_map(|ev| ev.message.as_deref().map(|m| (m, event_time(ev))))
        .collect();
    failed.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
    for (m, _) in failed {
        let symptom = cache.entry(m).or_insert_with(|| Symptom::parse(m));
        if usable(symptom) {
            return (m.to_string(), symptom.clone());
        }
    }
    let m = waiting.unwrap_or_default().to_string();
    let s = Symptom::parse(&m);
    (m, s)
}

/// The earliest time a `Failed` event of the pod was first seen.
fn first_failed(events: &[&Event]) -> Option<OffsetDateTime> {
    failed_events(events)
        .filter_map(|ev| {
            ev.first_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .or_else(|| ev.event_time.as_ref().map(|t| t.0.as_second()))
                .or_else(|| ev.last_timestamp.as_ref().map(|t| t.0.as_second()))
        })
        .min()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

fn failed_events<'a>(events: &'a [&'a Event]) -> impl Iterator<Item = &'a Event> + 'a {
    events.iter().copied().filter(|ev| ev.reason.as_deref() == Some("Failed"))
}

fn event_time(ev: &Event) -> i64 {
    ev.last_timestamp
        .as_ref()
        .or(ev.first_timestamp.as_ref())
        .map(|t| t.0.as_second())
        .or_else(|| ev.event_time.as_ref().map(|t| t.0.as_second()))
        .unwrap_or(0)
}

fn secrets_of(evidence: &Evidence, pod: &Pod, ns: &str) -> (Vec<String>, Vec<PullSecret>, Vec<String>) {
    let mut names: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.as_ref())
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    let sa_name = pod.spec.as_ref().and_then(|s| s.service_account_name.as_deref()).unwrap_or("default");
    if let Some(sa) = evidence
        .service_accounts
        .iter()
        .find(|sa| sa.metadata.namespace.as_deref() == Some(ns) && sa.metadata.name.as_deref() == Some(sa_name))
    {
        for r in sa.image_pull_secrets.iter().flatten() {
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for n in &names {
        match evidence.secret(ns, n) {
            Some(s) => found.extend(PullSecret::from_secret(s)),
            None if !evidence.secrets.is_empty() => missing.push(n.clone()),
            None => {}
        }
    }
    (names, found, missing)
}

fn owner_of(evidence: &Evidence, pod: &Pod, ns: &str, name: &str) -> WorkloadRef {
    let owner = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true));
    let Some(owner) = owner else {
        return WorkloadRef { kind: "Pod".into(), namespace: ns.into(), name: name.into() };
    };
    if owner.kind == "ReplicaSet" {
        let rs = evidence.replica_sets.iter().find(|rs| {
            rs.metadata.namespace.as_deref() == Some(ns) && rs.metadata.name.as_deref() == Some(owner.name.as_str())
        });
        let deployment = match rs {
            Some(rs) => {
                rs.metadata.owner_references.iter().flatten().find(|o| o.kind == "Deployment").map(|o| o.name.clone())
            }
            // A ReplicaSet made by a Deployment is named `<deployment>-<pod-template-hash>`.
            None => owner.name.rsplit_once('-').map(|(d, _)| d.to_string()),
        };
        if let Some(d) = deployment {
            return WorkloadRef { kind: "Deployment".into(), namespace: ns.into(), name: d };
        }
    }
    WorkloadRef { kind: owner.kind.clone(), namespace: ns.into(), name: owner.name.clone() }
}
