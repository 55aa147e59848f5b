//! What a host run may leave behind, counted the same way before and after: network namespaces,
//! processes of the pinned components, mounts, cgroups, run folders, leases, and interfaces and
//! nftables tables in the machine's own namespace.

use std::collections::BTreeSet;

/// Everything of ours found on the machine, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    pub namespaces: BTreeSet<String>,
    pub processes: BTreeSet<String>,
    pub mounts: BTreeSet<String>,
    pub cgroups: BTreeSet<String>,
    pub folders: BTreeSet<String>,
    pub leases: BTreeSet<String>,
    /// Network interfaces in the machine's own namespace (a veth left outside its world).
    pub interfaces: BTreeSet<String>,
    /// nftables tables in the machine's own namespace.
    pub nft_tables: BTreeSet<String>,
}

fn names(dir: &str, keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| keep(n)).collect())
        .unwrap_or_default()
}

impl Leftovers {
    pub fn now() -> Self {
        let cache = pullproof_host_runtime::components::default_cache().display().to_string();
        let processes = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .filter_map(|pid| {
                        let c = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                        let c = String::from_utf8_lossy(&c).replace('\0', " ");
                        // Containers (pause, the workload) name nothing of ours; their cgroup does.
                        let in_container = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                            .is_ok_and(|g| g.contains(":/k8s.io/"));
                        (c.contains("/pullproof-")
                            || c.contains(&cache)
                            || c.contains("docker-registry serve")
                            || in_container)
                            .then(|| format!("{pid} {}", c.chars().take(160).collect::<String>()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| {
                m.lines()
                    .filter_map(|l| l.split(' ').nth(4))
                    .filter(|p| p.contains("/pullproof-") || p.starts_with("/run/netns/pp-"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut cgroups = BTreeSet::new();
        for h in names("/sys/fs/cgroup", |_| true) {
            let parent = format!("/sys/fs/cgroup/{h}/k8s.io");
            if std::path::Path::new(&parent).is_dir() {
                cgroups.insert(parent.clone());
                cgroups.extend(names(&parent, |n| !n.contains('.')).into_iter().map(|c| format!("{parent}/{c}")));
            }
        }
        Self {
            namespaces: names("/run/netns", |n| n.starts_with("pp-")),
            processes,
            mounts,
            cgroups,
            folders: names(&std::env::temp_dir().display().to_string(), |n| n.starts_with("pullproof-")),
            leases: names("/run/pullproof/runs", |_| true),
            interfaces: names("/sys/class/net", |_| true),
            nft_tables: std::process::Command::new("nft")
                .args(["list", "tables"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }

    /// What is here now and was not `before`, by kind; empty when nothing was left.
    pub fn new_since(&self, before: &Leftovers) -> Vec<String> {
        let diff = |what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>| {
            a.difference(b).map(|x| format!("{what}: {x}")).collect::<Vec<_>>()
        };
        let mut out = diff("network namespace", &self.namespaces, &before.namespaces);
        out.extend(diff("process", &self.processes, &before.processes));
        out.extend(diff("mount", &self.mounts, &before.mounts));
        out.extend(diff("cgroup", &self.cgroups, &before.cgroups));
        out.extend(diff("run folder", &self.folders, &before.folders));
        out.extend(diff("lease", &self.leases, &before.leases));
        out.extend(diff("network interface", &self.interfaces, &before.interfaces));
        out.extend(diff("nftables table", &self.nft_tables, &before.nft_tables));
        out
    }
}
