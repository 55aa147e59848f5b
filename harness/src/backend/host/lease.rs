//! Who owns a host run's world: a lease file per run in `/run/pullproof/runs`, naming the owning
//! process, the run's folder and the network namespaces' run ids. A lease whose process is gone
//! marks an orphaned world (the harness was killed with SIGKILL, or the machine lost power before
//! a reboot cleared `/run`); [`reclaim`] removes everything such a world left: processes
//! (control plane, kubelets, containerd and its shims, the registry), containers (through runc's
//! own state), mounts, network namespaces and folders.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where leases live.
pub const LEASE_DIR: &str = "/run/pullproof/runs";

/// One run's claim on its world.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The run's id (its folder is `pullproof-RUNID`).
    pub runid: String,
    /// The owning process.
    pub pid: u32,
    /// That process's start time (`/proc/PID/stat` field 22), so a reused pid is not mistaken
    /// for the owner.
    pub pid_start: u64,
    /// The run's folder.
    pub run_dir: PathBuf,
    /// Run ids of the worlds' network namespaces (`pp-ID-node`, ...).
    #[serde(default)]
    pub netns_runids: Vec<String>,
    /// What to print for a kept world (`--keep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

fn path_of(runid: &str) -> PathBuf {
    Path::new(LEASE_DIR).join(format!("{runid}.json"))
}

/// The start time of `pid` in clock ticks since boot, if it runs.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 is `(comm)` and may hold spaces: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

impl Lease {
    /// A lease for this process.
    pub fn mine(runid: &str, run_dir: &Path) -> Self {
        let pid = std::process::id();
        Self {
            runid: runid.to_string(),
            pid,
            pid_start: process_start(pid).unwrap_or_default(),
            run_dir: run_dir.to_path_buf(),
            netns_runids: vec![],
            access: None,
        }
    }

    /// Writes (or rewrites) the lease file.
    pub fn save(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(LEASE_DIR)?;
        let tmp = path_of(&format!("{}.tmp", self.runid));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default())?;
        std::fs::rename(tmp, path_of(&self.runid))
    }

    /// Removes the lease file.
    pub fn release(&self) {
        let _ = std::fs::remove_file(path_of(&self.runid));
    }

    /// Whether the owning process still runs.
    pub fn alive(&self) -> bool {
        process_start(self.pid).is_some_and(|start| start == self.pid_start)
    }
}

/// Every lease on this machine.
pub fn all() -> Vec<Lease> {
    let Ok(entries) = std::fs::read_dir(LEASE_DIR) else { return vec![] };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

/// The leases whose owner is gone.
pub fn orphans() -> Vec<Lease> {
    all().into_iter().filter(|l| !l.alive()).collect()
}

/// What [`reclaim`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// Processes killed.
    pub processes: usize,
    /// Containers killed and deleted through runc.
    pub containers: usize,
    /// Network namespaces deleted.
    pub namespaces: usize,
    /// Mounts detached.
    pub mounts: usize,
}

/// Removes what an orphaned run left. Safe to run twice.
pub fn reclaim(lease: &Lease) -> Reclaimed {
    let mut r = Reclaimed::default();
    let dir = lease.run_dir.as_os_str().as_encoded_bytes().to_vec();
    // Containers first, through runc's own state (their processes do not name the folder).
    for root in runc_roots(&lease.run_dir) {
        let list = std::process::Command::new("runc").arg("--root").arg(&root).args(["list", "-q"]).output();
        for id in list
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let _ = std::process::Command::new("runc").arg("--root").arg(&root).args(["kill", &id, "KILL"]).status();
            let _ =
                std::process::Command::new("runc").arg("--root").arg(&root).args(["delete", "--force", &id]).status();
            r.containers += 1;
        }
    }
    // Containers whose runc state is already gone, while their shims still live to reap them
    // (killed after their shim, they would be left as zombies of an init that may not reap).
    r.processes += kill_orphan_containers(&lease.runid);
    // Every process whose command line names the run's folder (etcd, API server, kubelets,
    // containerd, shims, the registry) or that works in it (an engine, in its own folder), twice:
    // a dying parent may have started one more.
    for _ in 0..2 {
        let mut killed = Vec::new();
        for pid in processes_of(&lease.run_dir, &dir) {
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0 {
                killed.push(pid);
            }
        }
        r.processes += killed.len();
        wait_gone(&killed);
    }
    for id in &lease.netns_runids {
        r.namespaces += pullproof_host_net::sweep(&format!("{}{id}-", pullproof_host_net::NAME_PREFIX)).unwrap_or(0);
    }
    r.processes += kill_orphan_containers(&lease.runid);
    remove_orphan_container_cgroups(&lease.runid);
    remove_container_cgroup_parents();
    r.mounts = mounts_below(&lease.run_dir);
    pullproof_host_runtime::unmount_below(&lease.run_dir);
    let _ = std::fs::remove_dir_all(&lease.run_dir);
    lease.release();
    r
}

/// runc puts each container's cgroup below `/k8s.io` in every hierarchy (the kubelets run with
/// `cgroupsPerQOS: false`). Once the run's containers are gone the parent is removed again; a
/// parent that still holds another run's containers is not empty, and rmdir leaves it alone.
pub(crate) fn remove_container_cgroup_parents() {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return };
    for h in hierarchies.flatten() {
        let _ = std::fs::remove_dir(h.path().join("k8s.io"));
    }
}

/// Container cgroups below `/k8s.io` (in every hierarchy) that no other live run's containers
/// own. A run torn down half-way (an abort during teardown) can lose its containers' runc state
/// while their processes (pause, the workload) still run, with nothing naming them but their
/// cgroup. The containers of other live runs are known from their runc state, which runc writes
/// before it creates the cgroup.
fn orphan_container_cgroups(reclaimed_runid: &str) -> Vec<PathBuf> {
    let others: std::collections::HashSet<String> = all()
        .iter()
        .filter(|l| l.runid != reclaimed_runid && l.alive())
        .flat_map(|l| runc_roots(&l.run_dir))
        .flat_map(|root| {
            std::fs::read_dir(root)
                .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return vec![] };
    hierarchies
        .flatten()
        .filter_map(|h| std::fs::read_dir(h.path().join("k8s.io")).ok())
        .flat_map(|children| children.flatten().map(|c| c.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            // Container ids are 64 hex digits; cgroup control files hold dots.
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) && !others.contains(&name)
        })
        .collect()
}

/// Kills every process in [`orphan_container_cgroups`]; returns how many.
fn kill_orphan_containers(reclaimed_runid: &str) -> usize {
    let mut killed = Vec::new();
    for cgroup in orphan_container_cgroups(reclaimed_runid) {
        for pid in std::fs::read_to_string(cgroup.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
        {
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed.push(pid as u32);
            }
        }
    }
    wait_gone(&killed);
    killed.len()
}

/// Waits (up to 3 s) until each of `pids` has exited and been reaped by its parent, so that
/// what called the kill does not return while they are still dying.
fn wait_gone(pids: &[u32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while pids.iter().any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Removes the [`orphan_container_cgroups`] that are empty (rmdir refuses the others).
fn remove_orphan_container_cgroups(reclaimed_runid: &str) {
    for cgroup in orphan_container_cgroups(reclaimed_runid) {
        let _ = std::fs::remove_dir(cgroup);
    }
}

fn runc_roots(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if p.file_name().is_some_and(|n| n == "runc") {
                out.push(p.join("k8s.io"));
            } else if p.components().count() < dir.components().count() + 6 {
                stack.push(p);
            }
        }
    }
    out
}

fn processes_of(dir: &Path, needle: &[u8]) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![] };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| !needle.is_empty() && c.windows(needle.len()).any(|w| w == needle))
                // Never a folder as broad as `/` or `/tmp` (a damaged lease must not kill the machine).
                || (dir.components().count() > 2
                    && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir)))
        })
        .collect()
}

fn mounts_below(dir: &Path) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| Path::new(p).starts_with(dir)).count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_stranger_is_not() {
        let me = Lease::mine("t", Path::new("/tmp/x"));
        assert!(me.alive());
        let stranger = Lease { pid_start: me.pid_start + 1, ..me.clone() };
        assert!(!stranger.alive(), "a reused pid must not count as the owner");
    }

    #[test]
    fn leases_round_trip_as_json() {
        let mut l = Lease::mine("abc", Path::new("/tmp/pullproof-abc"));
        l.netns_runids.push("x1".into());
        let back: Lease = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }
}
