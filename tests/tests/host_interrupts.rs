//! The interrupt matrix: real runs of the pullproof CLI, interrupted at chosen phases with
//! SIGINT, two SIGINTs ("abort at once"), SIGTERM and SIGKILL. After each one nothing of ours may
//! be left on the machine (after `pullproof clean` for SIGKILL), and every run that could still
//! speak must exit 130 with a run record that says `"cancelled": true`.
//!
//! `PULLPROOF_INTERRUPTS=N` changes how many interrupts are tried (default 30, the figure in
//! the README); `PULLPROOF_INTERRUPT_SEED` changes the delays; `PULLPROOF_INTERRUPT_SIGNALS`
//! (e.g. `double,kill`) tries only those signals. A summary goes to stderr and to
//! `target/interrupts.json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pullproof::backend::host::lease;

mod host_ready;
mod leftovers;
mod rng;
use host_ready::host_ready;
use leftovers::Leftovers;
use rng::Rng;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn pullproof() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("pullproof")
}

/// How the harness is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Int,
    /// A second SIGINT within `gap` of the first.
    DoubleInt,
    Term,
    Kill,
}

const SIGNALS: [Signal; 4] = [Signal::Int, Signal::DoubleInt, Signal::Term, Signal::Kill];

/// Where in a run the signal lands: the scenario run, the log line that opens the phase, and the
/// longest random delay after it.
#[derive(Debug, Clone, Copy)]
struct Moment {
    name: &'static str,
    scenario: &'static str,
    after: &'static str,
    up_to: Duration,
}

const MOMENTS: [Moment; 7] = [
    // The shared control plane is starting (etcd, API server): the lease exists, little else.
    Moment { name: "control plane start", scenario: "image-tag-not-found", after: "start ", up_to: ms(1500) },
    // The world is being built: emulator, registry, namespaces, containerd, kubelet.
    Moment { name: "baseline", scenario: "image-tag-not-found", after: "phase=Validate", up_to: ms(4000) },
    // The workload is coming up for the first time.
    Moment { name: "steady state", scenario: "acrpull-role-missing", after: "phase=Baseline", up_to: ms(1500) },
    // containerd's 30-second dial timeout against a dropped packet.
    Moment { name: "30 s timeout wait", scenario: "route-table-blackhole", after: "phase=Inject", up_to: ms(20000) },
    // The engine diagnoses and its plan is applied.
    Moment {
        name: "diagnose and remediate",
        scenario: "acrpull-role-missing",
        after: "phase=VerifyInjected",
        up_to: ms(1500),
    },
    // The workload recovers after the fix.
    Moment { name: "recover", scenario: "acrpull-role-missing", after: "phase=Remediate", up_to: ms(1000) },
    // The inverse is applied and the world checked healthy again.
    Moment { name: "revert", scenario: "acrpull-role-missing", after: "phase=Recover", up_to: ms(500) },
];

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one interrupt did.
#[derive(Debug)]
struct Outcome {
    moment: &'static str,
    signal: Signal,
    /// The exit status, when the harness could still speak (not after SIGKILL).
    code: Option<i32>,
    seconds: f64,
    /// What was left behind, by kind.
    left: Vec<String>,
    problems: Vec<String>,
}

/// Waits for a line containing `needle` on the harness's stderr, keeping every line seen.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>, deadline: Instant) -> bool {
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

fn send(child: &Child, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; a child that already exited is a zombie
    // until waited, so the pid cannot have been reused.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn interrupt(moment: Moment, signal: Signal, rng: &mut Rng) -> Outcome {
    let before = Leftovers::now();
    let reports = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(pullproof())
        .current_dir(root())
        .args(["run", moment.scenario, "--report-dir"])
        .arg(reports.path())
        // Phase lines, and no ANSI colours in them.
        .env("RUST_LOG", "pullproof::run=info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    if !wait_for(&lines, moment.after, &mut seen, Instant::now() + Duration::from_secs(180)) {
        problems.push(format!("never reached `{}`:\n{}", moment.after, seen.join("\n")));
    }
    std::thread::sleep(ms(rng.below(moment.up_to.as_millis() as u64 + 1)));
    let code = match signal {
        Signal::Int => {
            send(&child, libc::SIGINT);
            child.wait().unwrap().code()
        }
        Signal::Term => {
            send(&child, libc::SIGTERM);
            child.wait().unwrap().code()
        }
        Signal::DoubleInt => {
            send(&child, libc::SIGINT);
            // The second one while the first is still being handled (revert, teardown).
            std::thread::sleep(ms(50 + rng.below(1000)));
            send(&child, libc::SIGINT);
            child.wait().unwrap().code()
        }
        Signal::Kill => {
            send(&child, libc::SIGKILL);
            child.wait().unwrap();
            let out = Command::new(pullproof()).arg("clean").output().unwrap();
            if !out.status.success() {
                problems.push(format!("pullproof clean failed: {}", String::from_utf8_lossy(&out.stderr)));
            }
            None
        }
    };
    let _ = reader.join();
    seen.extend(lines.try_iter());
    if signal != Signal::Kill {
        if code != Some(130) {
            problems.push(format!("exit code {code:?}, not 130"));
        }
        match std::fs::read(reports.path().join("run.json")) {
            Ok(bytes) => {
                let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if record["cancelled"] != serde_json::Value::Bool(true) {
                    problems.push("the run record does not say `cancelled: true`".into());
                }
                if record["scenarios"].as_array().is_none_or(|s| s.len() != 1) {
                    problems.push(format!("the run record does not list the scenario: {record}"));
                }
            }
            Err(e) => problems.push(format!("no run record: {e}")),
        }
    }
    if !problems.is_empty() {
        problems.push(format!("harness stderr:\n{}", seen.join("\n")));
    }
    Outcome {
        moment: moment.name,
        signal,
        code,
        seconds: started.elapsed().as_secs_f64(),
        left: Leftovers::now().new_since(&before),
        problems,
    }
}

#[test]
fn host_interrupts_leave_nothing_behind() {
    if !host_ready("host_interrupts_leave_nothing_behind") {
        return;
    }
    assert!(lease::orphans().is_empty(), "an orphaned world is already here: run `pullproof clean` first");
    let n: usize = std::env::var("PULLPROOF_INTERRUPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let seed: u64 = std::env::var("PULLPROOF_INTERRUPT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed);
    let mut rng = Rng(seed.max(1));
    let only: Vec<String> = std::env::var("PULLPROOF_INTERRUPT_SIGNALS")
        .map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let wanted = |s: Signal| {
        let name = match s {
            Signal::Int => "int",
            Signal::DoubleInt => "double",
            Signal::Term => "term",
            Signal::Kill => "kill",
        };
        only.is_empty() || only.iter().any(|o| o == name)
    };
    // Every moment with every signal, then round again; extra rounds favour the double SIGINT,
    // the case that used to leave worlds behind.
    let mut plan = Vec::new();
    'fill: loop {
        for m in MOMENTS {
            for s in SIGNALS.into_iter().filter(|s| wanted(*s)) {
                if plan.len() == n {
                    break 'fill;
                }
                plan.push((m, s));
            }
        }
        for m in MOMENTS {
            if plan.len() == n {
                break 'fill;
            }
            let extra = if wanted(Signal::DoubleInt) {
                Signal::DoubleInt
            } else {
                SIGNALS.into_iter().find(|s| wanted(*s)).unwrap_or(Signal::DoubleInt)
            };
            plan.push((m, extra));
        }
    }
    let mut outcomes = Vec::new();
    for (i, (m, s)) in plan.into_iter().enumerate() {
        let o = interrupt(m, s, &mut rng);
        eprintln!(
            "interrupt {:>2}/{n}: {:<22} {:<10} exit {:<5} {:>5.1}s  left {}{}",
            i + 1,
            o.moment,
            format!("{:?}", o.signal),
            o.code.map_or("-".into(), |c| c.to_string()),
            o.seconds,
            o.left.len(),
            if o.problems.is_empty() { "" } else { "  PROBLEM" }
        );
        outcomes.push(o);
    }
    let summary: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "moment": o.moment, "signal": format!("{:?}", o.signal), "exit": o.code,
                "seconds": o.seconds, "leftovers": o.left.len(), "problems": o.problems.len(),
            })
        })
        .collect();
    let _ =
        std::fs::write(root().join("target/interrupts.json"), serde_json::to_vec_pretty(&summary).unwrap_or_default());
    let bad: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.left.is_empty() || !o.problems.is_empty())
        .map(|o| format!("{} / {:?}:\n  left: {:#?}\n  {}", o.moment, o.signal, o.left, o.problems.join("\n  ")))
        .collect();
    assert!(bad.is_empty(), "{} of {n} interrupts went wrong:\n{}", bad.len(), bad.join("\n\n"));
    assert!(lease::orphans().is_empty(), "an orphaned world is left");
}
