//! The store as `kubectl cluster-info dump --all-namespaces --output-directory DIR` writes it:
//! `DIR/nodes.json`, and per namespace `DIR/NS/{pods,events,replicasets,deployments}.json`,
//! plus `DIR/NS/secrets.json` and `DIR/NS/serviceaccounts.json` (an extension pulldoctor reads;
//! `cluster-info dump` leaves them out). Each file is a Kubernetes `List` (`PodList`, ...),
//! indented with four spaces like kubectl's JSON printer.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::DumpError;

/// The value secret data is replaced with when redacting.
pub const REDACTED: &str = "REDACTED";

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DumpOptions {
    /// Replace every value of the secrets' `data` (and `stringData`) with [`REDACTED`]
    /// (for artifacts). The keys, type and metadata stay.
    pub redact: bool,
}

fn io(path: &Path, source: std::io::Error) -> DumpError {
    DumpError { path: path.display().to_string(), source }
}

/// A Kubernetes list, fields in kubectl's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a, T: Serialize> {
    kind: &'a str,
    api_version: &'a str,
    metadata: ListMeta<'a>,
    items: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta<'a> {
    resource_version: &'a str,
}

fn write_list<T: Serialize>(
    path: &Path,
    api_version: &str,
    kind: &str,
    resource_version: &str,
    items: &[&T],
    redact_secret_data: bool,
) -> Result<(), DumpError> {
    let metadata = ListMeta { resource_version };
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    if redact_secret_data {
        let mut values: Vec<Value> = items
            .iter()
            .map(|item| serde_json::to_value(item).map_err(|e| io(path, e.into())))
            .collect::<Result<_, _>>()?;
        for item in &mut values {
            for field in ["data", "stringData"] {
                if let Some(Value::Object(map)) = item.get_mut(field) {
                    for value in map.values_mut() {
                        *value = Value::String(REDACTED.to_owned());
                    }
                }
            }
        }
        List { kind, api_version, metadata, items: values }.serialize(&mut serializer)
    } else {
        List { kind, api_version, metadata, items }.serialize(&mut serializer)
    }
    .map_err(|e| io(path, e.into()))?;
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(|e| io(path, e))
}

fn in_namespace<'a, T>(items: &'a [T], namespace: &str, meta: impl Fn(&T) -> Option<&str>) -> Vec<&'a T> {
    items.iter().filter(|item| meta(item) == Some(namespace)).collect()
}

/// Writes `cluster` under `dir` (created if needed; existing files are overwritten).
///
/// ```
/// use pullproof_host_kubelet::{Cluster, dump::{DumpOptions, write_dump}};
///
/// let dir = tempfile::tempdir().unwrap();
/// write_dump(&Cluster::new(), dir.path(), DumpOptions::default()).unwrap();
/// assert!(dir.path().join("nodes.json").is_file());
/// assert!(dir.path().join("default/pods.json").is_file());
/// ```
pub fn write_dump(cluster: &Cluster, dir: &Path, options: DumpOptions) -> Result<(), DumpError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let rv = cluster.resource_version();
    let nodes: Vec<_> = cluster.nodes().iter().collect();
    write_list(&dir.join("nodes.json"), "v1", "NodeList", &rv, &nodes, false)?;
    for namespace in cluster.namespaces() {
        let ns_dir = dir.join(namespace);
        std::fs::create_dir_all(&ns_dir).map_err(|e| io(&ns_dir, e))?;
        let pods = in_namespace(cluster.pods(), namespace, |p| p.metadata.namespace.as_deref());
        write_list(&ns_dir.join("pods.json"), "v1", "PodList", &rv, &pods, false)?;
        let events = in_namespace(cluster.events(), namespace, |e| e.metadata.namespace.as_deref());
        write_list(&ns_dir.join("events.json"), "v1", "EventList", &rv, &events, false)?;
        let replica_sets = in_namespace(cluster.replica_sets(), namespace, |r| r.metadata.namespace.as_deref());
        write_list(&ns_dir.join("replicasets.json"), "apps/v1", "ReplicaSetList", &rv, &replica_sets, false)?;
        let deployments = in_namespace(cluster.deployments(), namespace, |d| d.metadata.namespace.as_deref());
        write_list(&ns_dir.join("deployments.json"), "apps/v1", "DeploymentList", &rv, &deployments, false)?;
        let secrets = in_namespace(cluster.secrets(), namespace, |s| s.metadata.namespace.as_deref());
        write_list(&ns_dir.join("secrets.json"), "v1", "SecretList", &rv, &secrets, options.redact)?;
        let accounts = in_namespace(cluster.service_accounts(), namespace, |s| s.metadata.namespace.as_deref());
        write_list(&ns_dir.join("serviceaccounts.json"), "v1", "ServiceAccountList", &rv, &accounts, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_lists_and_redacts_secrets() {
        let mut cluster = Cluster::new();
        cluster.put_secret("app", "acr", "myacr.azurecr.io", "myacr", "s3cret-password");
        let dir = tempfile::tempdir().unwrap();
        write_dump(&cluster, dir.path(), DumpOptions { redact: true }).unwrap();
        let text = std::fs::read_to_string(dir.path().join("app/secrets.json")).unwrap();
        let list: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(list["kind"], "SecretList");
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["items"][0]["data"][".dockerconfigjson"], REDACTED);
        assert_eq!(list["items"][0]["type"], "kubernetes.io/dockerconfigjson");
        assert!(text.starts_with("{\n    \"kind\""));
        let rs: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("app/replicasets.json")).unwrap()).unwrap();
        assert_eq!(rs["apiVersion"], "apps/v1");

        write_dump(&cluster, dir.path(), DumpOptions::default()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("app/secrets.json")).unwrap();
        assert!(!text.contains(REDACTED));
    }
}
