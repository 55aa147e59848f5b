//! `pulldoctor diagnose --dump` on a generated 5,000-pod, 50,000-event dump, next to the time to
//! merely parse that dump. Target: diagnosis at most 1.3 times the parse time.
//!
//! `cargo bench -p pulldoctor --bench diagnose` (std::time only; median of N runs).
//! Environment: `PULLDOCTOR_BENCH_RUNS` (default 7), `PULLDOCTOR_BENCH_PODS` (5000),
//! `PULLDOCTOR_BENCH_EVENTS_PER_POD` (10).

use std::path::Path;
use std::time::{Duration, Instant};

use pulldoctor::report::Report;
use pulldoctor::{Evidence, diagnose};
use serde_json::{Value, json};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn read_items(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": items})
}

/// Writes the dump: `pods` pods over 50 namespaces, a third of them failing on the fixture's
/// cause, each with `per_pod` events (the kubelet's sequence, with repeats).
fn generate(dir: &Path, pods: usize, per_pod: usize) -> (usize, usize) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/evidence/acrpull-role-missing/dump");
    std::fs::copy(fixture.join("nodes.json"), dir.join("nodes.json")).expect("nodes");
    let src_pods = read_items(&fixture.join("shop/pods.json"));
    let failing = src_pods
        .iter()
        .find(|p| p["status"]["containerStatuses"][0]["state"]["waiting"].is_object())
        .expect("a failing pod")
        .clone();
    let running = src_pods
        .iter()
        .find(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
        .cloned()
        .unwrap_or_else(|| failing.clone());
    let src_events = read_items(&fixture.join("shop/events.json"));
    let failed_event = src_events
        .iter()
        .find(|e| e["reason"] == "Failed" && e["message"].as_str().is_some_and(|m| m.starts_with("Failed to pull")))
        .expect("a Failed event")
        .clone();
    let other_events: Vec<Value> = src_events.iter().filter(|e| e["reason"] != "Failed").cloned().collect();
    let replica_sets = read_items(&fixture.join("shop/replicasets.json"));

    const NAMESPACES: usize = 50;
    let mut total_events = 0;
    let mut total_failing = 0;
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:02}");
        let nsdir = dir.join(&ns);
        std::fs::create_dir_all(&nsdir).expect("namespace dir");
        let mut pod_items = Vec::new();
        let mut event_items = Vec::new();
        for i in (n..pods).step_by(NAMESPACES) {
            let is_failing = i % 3 == 0;
            let mut p = if is_failing { failing.clone() } else { running.clone() };
            let name = format!("web-{i:05}");
            p["metadata"]["name"] = json!(name);
            p["metadata"]["namespace"] = json!(ns);
            p["metadata"]["uid"] = json!(format!("uid-{i}"));
            if is_failing {
                total_failing += 1;
            }
            for k in 0..per_pod {
                let mut e = if (is_failing && k % 2 == 0) || other_events.is_empty() {
                    failed_event.clone()
                } else {
                    other_events[k % other_events.len()].clone()
                };
                e["metadata"]["name"] = json!(format!("{name}.{k:04x}"));
                e["metadata"]["namespace"] = json!(ns);
                e["involvedObject"]["name"] = json!(name);
                e["involvedObject"]["namespace"] = json!(ns);
                e["lastTimestamp"] = json!(format!("2025-06-02T10:{:02}:{:02}Z", (k / 60) % 60, k % 60));
                event_items.push(e);
            }
            pod_items.push(p);
        }
        total_events += event_items.len();
        let rs: Vec<Value> = replica_sets
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["metadata"]["namespace"] = json!(ns);
                r
            })
            .collect();
        for (file, kind, items) in [
            ("pods.json", "PodList", pod_items),
            ("events.json", "EventList", event_items),
            ("replicasets.json", "ReplicaSetList", rs),
        ] {
            std::fs::write(nsdir.join(file), serde_json::to_vec(&list(kind, items)).expect("JSON")).expect("write");
        }
    }
    (total_failing, total_events)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs = env_usize("PULLDOCTOR_BENCH_RUNS", 7).max(1);
    let pods = env_usize("PULLDOCTOR_BENCH_PODS", 5000);
    let per_pod = env_usize("PULLDOCTOR_BENCH_EVENTS_PER_POD", 10);
    let dir = tempfile::tempdir().expect("temp dir");
    let (failing, events) = generate(dir.path(), pods, per_pod);
    let azure = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/evidence/acrpull-role-missing/azure.json");
    let size: u64 = walk(dir.path());
    println!("dump: {pods} pods ({failing} failing), {events} events, {:.1} MiB", size as f64 / 1048576.0);

    let mut parse = Vec::new();
    let mut full = Vec::new();
    let mut detect_only = Vec::new();
    let mut findings = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let e = Evidence::load(dir.path(), Some(&azure)).expect("load");
        parse.push(t.elapsed());
        drop(e);

        let t = Instant::now();
        let e = Evidence::load(dir.path(), Some(&azure)).expect("load");
        let t2 = Instant::now();
        let d = diagnose(&e);
        let report = Report::from_diagnosis(&d, e.azure.unavailable.clone());
        let json = serde_json::to_string_pretty(&report).expect("JSON");
        detect_only.push(t2.elapsed());
        full.push(t.elapsed());
        findings = report.findings.len();
        assert!(!json.is_empty());
    }
    // Where diagnose's time goes.
    let e = Evidence::load(dir.path(), Some(&azure)).expect("load");
    let mut failures_t = Vec::new();
    let mut detect_t = Vec::new();
    let mut report_t = Vec::new();
    let mut json_t = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let pf = pulldoctor::evidence::pull_failures(&e);
        failures_t.push(t.elapsed());
        assert!(!pf.is_empty());
        let t = Instant::now();
        let d = diagnose(&e);
        detect_t.push(t.elapsed());
        let t = Instant::now();
        let report = Report::from_diagnosis(&d, e.azure.unavailable.clone());
        report_t.push(t.elapsed());
        let t = Instant::now();
        let json = serde_json::to_string_pretty(&report).expect("JSON");
        json_t.push(t.elapsed());
        assert!(!json.is_empty());
    }
    // What pull_failures spends its time on: one Symptom::parse per `Failed` event of a failing pod.
    let failed_msgs: Vec<&str> = e
        .events
        .iter()
        .filter(|ev| ev.reason.as_deref() == Some("Failed"))
        .filter_map(|ev| ev.message.as_deref())
        .collect();
    let t = Instant::now();
    for m in &failed_msgs {
        std::hint::black_box(pulldoctor::symptom::Symptom::parse(m));
    }
    println!("Symptom::parse of every `Failed` event message ({}): {:.2?}", failed_msgs.len(), t.elapsed());
    println!(
        "breakdown (medians): pull_failures {:.2?}; diagnose (pull_failures + detectors) {:.2?}; Report::from_diagnosis {:.2?}; JSON {:.2?}",
        median(failures_t),
        median(detect_t),
        median(report_t),
        median(json_t)
    );
    let (p, f, d) = (median(parse), median(full), median(detect_only));
    println!("parse only (Evidence::load):            median {p:>10.2?} over {runs} runs");
    println!("parse + diagnose + report (diagnose --dump): median {f:>10.2?} ({findings} finding(s))");
    println!("  of which diagnose + report:            median {d:>10.2?}");
    let ratio = f.as_secs_f64() / p.as_secs_f64();
    println!("ratio: {ratio:.3} (target <= 1.3) {}", if ratio <= 1.3 { "OK" } else { "OVER TARGET" });
}

fn walk(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| if e.path().is_dir() { walk(&e.path()) } else { e.metadata().map(|m| m.len()).unwrap_or(0) })
                .sum()
        })
        .unwrap_or(0)
}
