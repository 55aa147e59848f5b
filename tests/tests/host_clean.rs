//! A run killed with SIGKILL leaves its world behind (nothing in the harness survives to tear it
//! down); the next run warns about it and `pullproof clean` removes all of it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pullproof::backend::host::lease;

mod host_ready;
mod leftovers;
use host_ready::host_ready;
use leftovers::Leftovers;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn pullproof() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("pullproof")
}

#[test]
fn host_clean_reclaims_the_world_of_a_killed_run() {
    if !host_ready("host_clean_reclaims_the_world_of_a_killed_run") {
        return;
    }
    let before = Leftovers::now();
    let orphans_before = lease::orphans().len();
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(pullproof())
        .current_dir(root())
        .args(["run", "healthy-baseline", "--keep", "--report-dir"])
        .arg(reports.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the world is up and kept, then kill the harness outright.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("pullproof ended before keeping the world").unwrap();
        if line.contains("the world is kept") {
            break;
        }
        seen.push(line);
        assert!(Instant::now() < deadline, "the world never came up:\n{}", seen.join("\n"));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Orphaned: the lease's owner is gone, the world is still here.
    let orphans = lease::orphans();
    assert_eq!(orphans.len(), orphans_before + 1, "{orphans:?}");
    let orphaned = Leftovers::now().new_since(&before);
    assert!(orphaned.iter().any(|l| l.starts_with("process:") && l.contains("kubelet")), "{orphaned:#?}");
    assert!(orphaned.iter().any(|l| l.starts_with("network namespace:")), "{orphaned:#?}");

    // The next run says so.
    let warned = Command::new(pullproof())
        .current_dir(root())
        .args(["run", "healthy-baseline", "--report-dir"])
        .arg(reports.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&warned.stderr);
    assert!(stderr.contains("orphaned world") && stderr.contains("pullproof clean"), "{stderr}");

    // clean reclaims every kind of leftover, and nothing of a live run.
    let out = Command::new(pullproof()).args(["clean"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("removed run"), "{said}");
    let left = Leftovers::now().new_since(&before);
    assert!(left.is_empty(), "left behind after `pullproof clean`:\n{}", left.join("\n"));
    assert!(lease::orphans().is_empty(), "clean leaves no orphan");
}
