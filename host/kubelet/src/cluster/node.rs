//! Nodes as AKS registers them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::version::KubeletVersion;

/// What a node is: the labels and `status.nodeInfo` an AKS node has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Node name (`aks-nodepool1-12345678-vmss000000`).
    pub name: String,
    /// Node pool (`agentpool` and `kubernetes.azure.com/agentpool` labels).
    pub pool: String,
    /// `linux` or `windows`.
    pub os: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// The kubelet version reported in `nodeInfo`.
    pub kubelet_version: KubeletVersion,
    /// `containerd://1.6.20`.
    pub container_runtime_version: String,
    /// `InternalIP` address (a label on paper only: nothing connects to it). Defaults to
    /// `10.224.0.N`.
    pub internal_ip: Option<String>,
    /// `spec.providerID` (`azure:///subscriptions/.../virtualMachineScaleSets/VMSS/virtualMachines/0`).
    pub provider_id: Option<String>,
    /// Extra labels (override the defaults).
    pub labels: BTreeMap<String, String>,
}

impl NodeConfig {
    /// A node of `pool` with the given OS and architecture, kubelet v1.33.2 and containerd
    /// 1.6.20.
    pub fn new(name: &str, pool: &str, os: &str, arch: &str) -> Self {
        Self {
            name: name.to_owned(),
            pool: pool.to_owned(),
            os: os.to_owned(),
            arch: arch.to_owned(),
            kubelet_version: KubeletVersion::DEFAULT,
            container_runtime_version: "containerd://1.6.20".to_owned(),
            internal_ip: None,
            provider_id: None,
            labels: BTreeMap::new(),
        }
    }

    /// A linux/amd64 node.
    pub fn linux(name: &str, pool: &str) -> Self {
        Self::new(name, pool, "linux", "amd64")
    }

    /// A windows/amd64 node.
    pub fn windows(name: &str, pool: &str) -> Self {
        Self::new(name, pool, "windows", "amd64")
    }

    /// With this kubelet version.
    pub fn kubelet_version(mut self, version: KubeletVersion) -> Self {
        self.kubelet_version = version;
        self
    }

    /// The labels the node carries.
    pub fn all_labels(&self) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = [
            ("agentpool", self.pool.as_str()),
            ("beta.kubernetes.io/arch", &self.arch),
            ("beta.kubernetes.io/os", &self.os),
            ("kubernetes.azure.com/agentpool", &self.pool),
            ("kubernetes.azure.com/mode", "user"),
            ("kubernetes.azure.com/role", "agent"),
            ("kubernetes.io/arch", &self.arch),
            ("kubernetes.io/hostname", &self.name),
            ("kubernetes.io/os", &self.os),
            ("kubernetes.io/role", "agent"),
            ("node.kubernetes.io/instance-type", "Standard_D4ds_v5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        labels.extend(self.labels.clone());
        labels
    }

    pub(crate) fn to_node(&self, mut metadata: ObjectMeta, now: Timestamp, index: usize) -> Node {
        metadata.labels = Some(self.all_labels());
        metadata.annotations = Some(BTreeMap::from([
            ("node.alpha.kubernetes.io/ttl".to_owned(), "0".to_owned()),
            ("volumes.kubernetes.io/controller-managed-attach-detach".to_owned(), "true".to_owned()),
        ]));
        let windows = self.os == "windows";
        let (os_image, kernel) = if windows {
            ("Windows Server 2022 Datacenter", "10.0.20348.3207")
        } else {
            ("Ubuntu 22.04.5 LTS", "5.15.0-1079-azure")
        };
        let ip = self.internal_ip.clone().unwrap_or_else(|| format!("10.224.0.{}", 4 + index));
        let uid = metadata.uid.clone().unwrap_or_default();
        let quantities = |cpu: &str, memory: &str| {
            BTreeMap::from([
                ("cpu".to_owned(), Quantity(cpu.to_owned())),
                ("memory".to_owned(), Quantity(memory.to_owned())),
                ("pods".to_owned(), Quantity("110".to_owned())),
            ])
        };
        Node {
            metadata,
            spec: Some(NodeSpec { provider_id: self.provider_id.clone(), ..NodeSpec::default() }),
            status: Some(NodeStatus {
                addresses: Some(vec![
                    NodeAddress { type_: "InternalIP".to_owned(), address: ip },
                    NodeAddress { type_: "Hostname".to_owned(), address: self.name.clone() },
                ]),
                capacity: Some(quantities("4", "16365384Ki")),
                allocatable: Some(quantities("3860m", "12880200Ki")),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".to_owned(),
                    status: "True".to_owned(),
                    reason: Some("KubeletReady".to_owned()),
                    message: Some("kubelet is posting ready status".to_owned()),
                    last_heartbeat_time: Some(Time(now)),
                    last_transition_time: Some(Time(now)),
                }]),
                node_info: Some(NodeSystemInfo {
                    architecture: self.arch.clone(),
                    boot_id: uid.clone(),
                    container_runtime_version: self.container_runtime_version.clone(),
                    kernel_version: kernel.to_owned(),
                    kube_proxy_version: self.kubelet_version.to_string(),
                    kubelet_version: self.kubelet_version.to_string(),
                    machine_id: uid.replace('-', ""),
                    operating_system: self.os.clone(),
                    os_image: os_image.to_owned(),
                    system_uuid: uid,
                    ..NodeSystemInfo::default()
                }),
                ..NodeStatus::default()
            }),
        }
    }
}
