//! No secret and no token ever reaches an output. The emulator writes every secret and token it
//! creates (client secrets, registry admin passwords, every access, refresh and registry token)
//! to a canary file (`PULLPROOF_CANARY_FILE`); the whole catalog then runs through the CLI, with
//! pulldoctor as the engine, half of the scenarios made to fail so that their artifacts are
//! written; and everything the run wrote is searched for every one of them: the reports, the
//! artifacts, the harness's stdout and stderr (at debug level), the engine's stdout and stderr.
//! Secrets may live only where they must: inside the worlds (Kubernetes Secret objects, the
//! nodes' credential files), which are gone when the run ends.

use std::path::{Path, PathBuf};
use std::process::Command;

mod grading;
mod host_ready;
mod leftovers;
use grading::{root, target_bin};
use host_ready::host_ready;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn host_no_secret_or_token_reaches_any_output() {
    if !host_ready("host_no_secret_or_token_reaches_any_output") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let canary = work.path().join("canary.txt");
    let out = work.path().join("out");
    let logs = out.join("engine");
    std::fs::create_dir_all(&logs).unwrap();
    let silent = root().join("examples/engines/adversarial/silent.py");
    // pulldoctor live through the contract, its stdout and stderr kept; on the scenarios whose
    // names match, a silent report instead, so that they fail and write artifacts.
    // The positive control: the token each engine was handed, kept outside the scanned outputs;
    // the canary must know it, or a leak of it would go unseen.
    let control = work.path().join("engine-tokens.txt");
    let engine = format!(
        r#"printf '%s\n' "$PULLPROOF_ARM_TOKEN" >>{control}; KUBECONFIG="$PULLPROOF_KUBECONFIG" {pd} diagnose -n "$PULLPROOF_NAMESPACE" --arm-endpoint "$PULLPROOF_ARM_ENDPOINT" --graph-endpoint "$PULLPROOF_GRAPH_ENDPOINT" --ca-file "$PULLPROOF_CA_FILE" --access-token "$PULLPROOF_ARM_TOKEN" --registry-address "$PULLPROOF_REGISTRY_ADDRESSES" --output json 2>>{logs}/stderr.log | tee -a {logs}/stdout.log >{logs}/"$PULLPROOF_NAMESPACE".json; case "$PULLPROOF_NAMESPACE" in *secret*|*sp*|*acrpull*|*identity*) python3 {silent};; *) cat {logs}/"$PULLPROOF_NAMESPACE".json;; esac"#,
        control = control.display(),
        pd = target_bin("pulldoctor").display(),
        logs = logs.display(),
        silent = silent.display(),
    );
    let before = leftovers::Leftovers::now();
    let run = Command::new(target_bin("pullproof"))
        .current_dir(root())
        .args(["run", "--parallel", "4", "--engine-user", "root", "--report-dir"])
        .arg(out.join("reports"))
        .args(["--engine-cmd", &engine])
        .env("PULLPROOF_CANARY_FILE", &canary)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    std::fs::write(out.join("harness.stdout"), &run.stdout).unwrap();
    std::fs::write(out.join("harness.stderr"), &run.stderr).unwrap();
    let left = leftovers::Leftovers::now().new_since(&before);
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
    assert_eq!(run.status.code(), Some(1), "some scenarios fail on purpose: {}", String::from_utf8_lossy(&run.stderr));

    let secrets: Vec<String> = {
        let mut s: Vec<String> = std::fs::read_to_string(&canary)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.len() >= 16)
            .map(str::to_string)
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let kinds = |prefix: &str| secrets.iter().filter(|s| s.starts_with(prefix)).count();
    assert!(secrets.len() > 100, "the canary saw only {} secrets and tokens", secrets.len());
    assert!(kinds("eyJ") > 50, "tokens recorded: {}", kinds("eyJ"));
    let mut files = Vec::new();
    files_under(&out, &mut files);
    let artifacts = files.iter().filter(|f| f.components().any(|c| c.as_os_str() == "artifacts")).count();
    assert!(artifacts > 10, "failed scenarios wrote artifacts ({artifacts} files)");
    assert!(std::fs::metadata(logs.join("stdout.log")).is_ok_and(|m| m.len() > 1000), "the engine's output was kept");

    let finder = aho_corasick::AhoCorasick::new(&secrets).unwrap();
    let handed = std::fs::read_to_string(&control).unwrap_or_default();
    assert!(handed.lines().count() >= 20, "every scenario's engine was handed a token");
    for token in handed.lines() {
        assert!(
            finder.is_match(token),
            "the canary does not know a token an engine was handed: {}…",
            &token[..8.min(token.len())]
        );
    }
    let mut hits = Vec::new();
    let mut scanned = 0u64;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        scanned += bytes.len() as u64;
        for m in finder.find_iter(&bytes) {
            let s = &secrets[m.pattern().as_usize()];
            hits.push(format!("{}: {}… ({} chars)", f.display(), &s[..8], s.len()));
        }
    }
    eprintln!(
        "canary: {} secrets and tokens, {} files, {} bytes scanned, {} hits",
        secrets.len(),
        files.len(),
        scanned,
        hits.len()
    );
    assert!(hits.is_empty(), "secrets or tokens in the outputs:\n{}", hits.join("\n"));
}
