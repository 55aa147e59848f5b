//! `PLATFORM_MISMATCH`: the image has no variant for the node's OS or architecture
//! (`no match for platform in manifest`).
//!
//! The registry's content says which platforms the repository is built for; the plan pins the
//! workload (`nodeSelector`) to an OS (and architecture) of an image platform that some node
//! of the cluster has, or else that a node pool of the cluster runs (ARM's `agentPoolProfiles`:
//! a pool scaled to zero, or whose nodes are not up, still takes the pod once they are). Without
//! either, a person must add a pool or build the image.

use std::collections::BTreeMap;

use super::Context;
use super::support::{Draft, Findings};
use crate::evidence::{NodePlatform, PullFailure};
use crate::finding::{Blame, Confidence, Finding, FindingCode};
use crate::plan::Action;
use crate::symptom::SymptomClass;

const OS: &str = "kubernetes.io/os";
const ARCH: &str = "kubernetes.io/arch";

/// Runs the detector.
pub(super) fn detect(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Findings::default();
    for f in ctx.failures.iter().filter(|f| f.symptom.class == SymptomClass::PlatformMismatch) {
        mismatch(&mut out, ctx, f);
    }
    out.into_vec()
}

/// `linux/arm64/v8` -> (`linux`, Some(`arm64`)).
fn split(platform: &str) -> (String, Option<String>) {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or_default().to_ascii_lowercase();
    (os, parts.next().map(str::to_ascii_lowercase))
}

fn show(p: &NodePlatform) -> String {
    format!("{}/{}", p.os.as_deref().unwrap_or("?"), p.arch.as_deref().unwrap_or("?"))
}

fn mismatch(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure) {
    let inv = &ctx.evidence.azure;
    let nodes: Vec<NodePlatform> = ctx.evidence.nodes.iter().map(NodePlatform::of).collect();
    let platforms: Vec<String> = f
        .image
        .as_ref()
        .and_then(|i| inv.content_of(&i.registry)?.repositories.iter().find(|r| r.name == i.repository))
        .map(|r| r.platforms.clone())
        .unwrap_or_default();
    let node = &f.platform;
    let node_matches = platforms.iter().any(|p| {
        let (os, arch) = split(p);
        node.os.as_deref() == Some(os.as_str()) && arch.as_deref().is_none_or(|a| node.arch.as_deref() == Some(a))
    });
    let confidence = if !platforms.is_empty() && !node_matches { Confidence::High } else { Confidence::Medium };
    // The first image platform some node of the cluster runs.
    let target = platforms.iter().map(|p| split(p)).find(|(os, arch)| {
        nodes.iter().any(|n| {
            n.os.as_deref() == Some(os.as_str()) && arch.as_deref().is_none_or(|a| n.arch.as_deref() == Some(a))
        })
    });
    // Else the first image OS a node pool of the cluster runs, by ARM (any architecture).
    let pool = match target {
        Some(_) => None,
        None => ctx.cluster.and_then(|c| {
            c.properties.agent_pool_profiles.iter().find_map(|pool| {
                let os = pool.os_type.as_deref()?.to_ascii_lowercase();
                platforms.iter().map(|p| split(p)).find(|(o, _)| *o == os).map(|(o, _)| (pool, o))
            })
        }),
    };
    let target = target.or_else(|| pool.as_ref().map(|(_, os)| (os.clone(), None)));
    let node_name = f.node.as_deref().unwrap_or("its node");
    let summary = if platforms.is_empty() {
        format!("Image {} has no variant for {} nodes, where {} runs.", f.pod.image, show(node), f.workload)
    } else {
        format!(
            "Image {} is built for {} only, but {} runs on {} nodes.",
            f.pod.image,
            platforms.join(", "),
            f.workload,
            show(node)
        )
    };
    let mut d = Draft::new(FindingCode::PlatformMismatch, confidence, f, summary)
        .blame(Blame::new(f.workload.kind.clone(), format!("{}/{}", f.workload.namespace, f.workload.name)).note(
            format!(
                "scheduled on {} nodes; image platforms {}",
                show(node),
                if platforms.is_empty() { "unknown".to_string() } else { platforms.join(", ") }
            ),
        ))
        .line(format!(
            "node {node_name}: {OS}={}, {ARCH}={}{}",
            node.os.as_deref().unwrap_or("?"),
            node.arch.as_deref().unwrap_or("?"),
            node.pool.as_deref().map(|p| format!(" (pool {p})")).unwrap_or_default()
        ));
    d = if platforms.is_empty() {
        d.line("the inventory does not list the repository's platforms".to_string())
    } else {
        d.line(format!(
            "repository {}: platforms {}",
            f.image.as_ref().map(|i| i.repository.as_str()).unwrap_or("?"),
            platforms.join(", ")
        ))
    };
    let mut shown: Vec<String> = nodes.iter().map(show).collect();
    shown.sort();
    shown.dedup();
    d = d.line(format!("node platforms in the cluster: {}", shown.join(", ")));
    if let Some((p, os)) = &pool {
        d = d.line(format!(
            "node pool {} runs {os} (agentPoolProfiles, {} nodes) though none of its nodes is up",
            p.name,
            p.count.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
        ));
    }
    d = match target {
        Some((os, arch)) => {
            let mut selector: BTreeMap<String, String> = f.node_selector.clone();
            selector.insert(OS.into(), os.clone());
            match arch {
                Some(a) if node.arch.as_deref() != Some(a.as_str()) || selector.contains_key(ARCH) => {
                    selector.insert(ARCH.into(), a);
                }
                _ => {}
            }
            d.action(Action::SetNodeSelector { workload: f.workload.clone(), node_selector: selector })
        }
        None => d.action(Action::Manual {
            change: None,
            description: if platforms.is_empty() {
                format!("find the platforms {} is built for and schedule {} on matching nodes", f.pod.image, f.workload)
            } else {
                format!(
                    "no node runs {}: add a node pool for it, or build {} for {}",
                    platforms.join(" or "),
                    f.pod.image,
                    show(node)
                )
            },
            commands: vec![
                format!("docker manifest inspect {}", f.pod.image),
                "kubectl get nodes -L kubernetes.io/os,kubernetes.io/arch,kubernetes.azure.com/agentpool".into(),
            ],
        }),
    };
    out.add(&format!("{}|{}|{}", f.workload, f.pod.container, show(node)), f, d);
}

#[cfg(test)]
mod tests {
    use super::super::world::*;
    use crate::finding::{Confidence, FindingCode};
    use crate::plan::Action;

    fn only(w: &World) -> crate::finding::Finding {
        let d = diagnose(w);
        assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
        d.findings.into_iter().next().unwrap()
    }

    #[test]
    fn pins_the_workload_to_an_os_the_image_has() {
        let f = only(&scenario("platform-mismatch"));
        assert_eq!((f.code, f.confidence), (FindingCode::PlatformMismatch, Confidence::High));
        match &f.plan.actions[..] {
            [Action::SetNodeSelector { workload, node_selector }] => {
                assert_eq!(workload.name, "legacy-iis");
                assert_eq!(
                    node_selector.iter().collect::<Vec<_>>(),
                    [(&"kubernetes.io/os".to_string(), &"windows".to_string())]
                );
            }
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn without_a_node_or_pool_of_that_os_a_person_decides() {
        let mut w = scenario("platform-mismatch");
        w.nodes.retain(|n| n.os != "windows");
        let pools =
            w.resource(&super::super::world::cluster_id())["properties"]["agentPoolProfiles"].as_array_mut().unwrap();
        pools.retain(|p| p["osType"] != "Windows");
        let f = only(&w);
        assert_eq!(f.code, FindingCode::PlatformMismatch);
        assert!(f.plan.actions.iter().all(Action::needs_human));
    }

    #[test]
    fn a_pool_of_that_os_with_no_node_up_still_takes_the_workload() {
        let mut w = scenario("platform-mismatch");
        w.nodes.retain(|n| n.os != "windows");
        let pools =
            w.resource(&super::super::world::cluster_id())["properties"]["agentPoolProfiles"].as_array().unwrap();
        assert!(pools.iter().any(|p| p["osType"] == "Windows"), "the world has a Windows pool in ARM");
        let f = only(&w);
        match &f.plan.actions[..] {
            [Action::SetNodeSelector { node_selector, .. }] => {
                assert_eq!(node_selector.get("kubernetes.io/os").map(String::as_str), Some("windows"));
            }
            a => panic!("{a:?}"),
        }
        assert!(f.evidence.iter().any(|l| l.contains("agentPoolProfiles")), "{:?}", f.evidence);
    }

    #[test]
    fn unknown_image_platforms_lower_confidence() {
        let mut w = scenario("platform-mismatch");
        w.azure["registryContent"] = serde_json::json!([]);
        let f = only(&w);
        assert_eq!(f.confidence, Confidence::Medium);
        assert!(f.plan.actions.iter().all(Action::needs_human));
    }

    #[test]
    fn an_architecture_mismatch_selects_os_and_arch() {
        let mut w = World::baseline("arm", K131);
        w.azure["registryContent"][0]["repositories"][2]["platforms"] = serde_json::json!(["linux/arm64"]);
        w.nodes.push(NodeSpec {
            name: "aks-armpool-27182818-vmss000000".into(),
            pool: "armpool".into(),
            os: "linux",
            arch: "arm64",
            ip: "10.10.0.7".into(),
            vmss: "aks-armpool-27182818-vmss".into(),
            index: 0,
        });
        w.break_rollout("web", None, |rt, img| rt.platform(img));
        let f = only(&w);
        match &f.plan.actions[..] {
            [Action::SetNodeSelector { node_selector, .. }] => {
                assert_eq!(node_selector.get("kubernetes.io/os").map(String::as_str), Some("linux"));
                assert_eq!(node_selector.get("kubernetes.io/arch").map(String::as_str), Some("arm64"));
            }
            a => panic!("{a:?}"),
        }
    }
}
