//! The command line: argument parsing and output. The work is done by the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pullproof::catalog::{Catalog, Layout};
use pullproof::diagnostic::Diagnostic;
use pullproof::plan::RunPlan;
use pullproof::scenario::{self, BackendKind};

/// Proves that an image-pull diagnosis engine names the right cause on AKS + ACR.
#[derive(Parser)]
#[command(name = "pullproof", version, about, propagate_version = true)]
struct Cli {
    /// Project root (holding scenarios/ and fixtures/); default: found from the current directory.
    #[arg(long, global = true, env = "PULLPROOF_ROOT")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios end to end and grade the engine.
    Run {
        #[command(flatten)]
        select: Select,
        /// The backend.
        #[arg(long, short, value_enum, default_value = "host")]
        backend: Backend,
        /// How many scenarios run at once (each in its own world).
        #[arg(long, short = 'j', default_value_t = 1)]
        parallel: usize,
        /// Write run.json, junit.xml, conformance.json and failure artifacts here.
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        /// Grade this engine instead of pulldoctor: a shell command that reads the inputs from
        /// PULLPROOF_* variables and prints a report (see README "Plugging in another engine").
        #[arg(long)]
        engine_cmd: Option<String>,
        /// Leave each world up after its scenario (before the revert), print how to reach it
        /// (KUBECONFIG, the emulator), and wait: Ctrl-C or `pullproof down` removes it.
        #[arg(long)]
        keep: bool,
        /// The unprivileged user `--engine-cmd` runs as, in a folder of its own (`root`: the
        /// harness's own user, which can read every world's files).
        #[arg(long, env = "PULLPROOF_ENGINE_USER", default_value = "nobody")]
        engine_user: String,
    },
    /// Remove a world kept with `run --keep` (or an orphaned one): the only run, or RUNID.
    Down {
        /// The run (as `run --keep` printed it).
        runid: Option<String>,
    },
    /// Remove every world whose owning `pullproof` process is gone (killed with SIGKILL, say):
    /// processes, containers, mounts, network namespaces and folders.
    Clean,
    /// The local Azure control plane.
    Emulator {
        #[command(subcommand)]
        command: EmulatorCommand,
    },
    /// List scenarios: name, cause, tags, backends.
    List(Select),
    /// Check scenario and baseline files (all, or the selected ones).
    Validate(Select),
    /// Show what running a scenario does, phase by phase, without doing anything.
    Plan {
        #[command(flatten)]
        select: Select,
        /// The backend to plan for.
        #[arg(long, short, value_enum, default_value = "host")]
        backend: Backend,
        /// Also print every ARM and Graph request the baseline, the fault and its inverse make.
        #[arg(long)]
        requests: bool,
        /// The subscription the requests name (default: $AZURE_SUBSCRIPTION_ID, else a placeholder).
        #[arg(long, env = "AZURE_SUBSCRIPTION_ID", default_value = "00000000-0000-0000-0000-000000000000")]
        subscription: String,
    },
    /// Print or check the generated JSON Schemas.
    Schema {
        /// Which schema.
        #[arg(value_enum, default_value = "scenario")]
        which: SchemaKind,
        /// Write it to its file in the tree instead of printing it.
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Fail if the file in the tree is stale.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand)]
enum EmulatorCommand {
    /// Serve the emulator until Ctrl-C.
    Serve(Box<pullproof_emulator::ServeArgs>),
}

#[derive(clap::Args)]
struct Select {
    /// Scenario names or globs (`vnet-*`); none selects all.
    names: Vec<String>,
    /// Only scenarios with this tag (repeatable: all must match).
    #[arg(long = "tag", short)]
    tags: Vec<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Host,
    Kind,
    Aks,
}

impl From<Backend> for BackendKind {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Host => BackendKind::Host,
            Backend::Kind => BackendKind::Kind,
            Backend::Aks => BackendKind::Aks,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaKind {
    /// scenarios/schema.json
    Scenario,
    /// fixtures/baselines/schema.json
    Baseline,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .init();
    let layout = match &cli.root {
        Some(root) => Layout::under(root),
        None => Layout::discover(),
    };
    match run(cli.command, &layout) {
        Ok(code) => code,
        Err(diags) => {
            for d in diags {
                eprintln!("error: {d}");
            }
            ExitCode::from(2)
        }
    }
}

fn run(command: Command, layout: &Layout) -> Result<ExitCode, Vec<Diagnostic>> {
    match command {
        Command::Run { select, backend, parallel, report_dir, engine_cmd, keep, engine_user } => {
            let how = RunHow { parallel, keep, engine_user };
            match engine_cmd {
                None => {
                    run_scenarios(layout, select, backend.into(), how, &report_dir, pullproof::run::Pulldoctor, false)
                }
                Some(command) => {
                    let engine = pullproof::run::External { command, timeout: std::time::Duration::from_secs(120) };
                    run_scenarios(layout, select, backend.into(), how, &report_dir, engine, true)
                }
            }
        }
        Command::Down { runid } => down(runid.as_deref()),
        Command::Clean => {
            let orphans = pullproof::backend::host::lease::orphans();
            if orphans.is_empty() {
                println!("nothing to clean: every world on this machine has a live owner");
            }
            for l in orphans {
                let r = pullproof::backend::host::lease::reclaim(&l);
                println!(
                    "removed run {} (pid {} gone): {} processes, {} containers, {} network namespaces, {} mounts, {}",
                    l.runid,
                    l.pid,
                    r.processes,
                    r.containers,
                    r.namespaces,
                    r.mounts,
                    l.run_dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Emulator { command: EmulatorCommand::Serve(args) } => {
            let rt = runtime()?;
            rt.block_on(pullproof_emulator::serve(*args))
                .map_err(|e| vec![Diagnostic::new(format!("emulator: {e}"))])?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List(sel) => {
            let catalog = Catalog::load_with(layout, &sel.names);
            report_diagnostics(&catalog.diagnostics);
            let entries = catalog.select(&sel.names, &sel.tags).map_err(|d| vec![d])?;
            if sel.output == Output::Json {
                let rows: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "name": e.scenario.name, "cause": e.scenario.cause, "tags": e.scenario.tags,
                            "backends": e.scenario.backends, "baseline": e.scenario.baseline,
                            "fault": e.scenario.fault.kind(), "findings": e.scenario.expect.findings,
                            "file": e.path,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
            } else {
                let rows: Vec<[String; 4]> = entries
                    .iter()
                    .map(|e| {
                        let backends: Vec<&str> = e.scenario.backends.iter().map(|b| b.as_str()).collect();
                        [
                            e.scenario.name.clone(),
                            e.scenario.cause.clone(),
                            e.scenario.tags.join(","),
                            backends.join(","),
                        ]
                    })
                    .collect();
                print!("{}", table(["SCENARIO", "CAUSE", "TAGS", "BACKENDS"], &rows));
            }
            Ok(if catalog.diagnostics.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Validate(sel) => {
            let catalog = Catalog::load_with(layout, &sel.names);
            // Selecting only narrows what is reported as valid; broken files are always errors.
            let selected = if catalog.diagnostics.is_empty() || !sel.names.is_empty() || !sel.tags.is_empty() {
                catalog.select(&sel.names, &sel.tags).unwrap_or_default()
            } else {
                catalog.entries.iter().collect()
            };
            let names_file = |d: &Diagnostic, p: &str| {
                d.file.as_ref().is_some_and(|f| {
                    if pullproof::catalog::is_path(p) {
                        f.canonicalize().ok() == std::path::Path::new(p).canonicalize().ok()
                    } else {
                        f.file_stem()
                            .and_then(|s| s.to_str())
                            .is_some_and(|stem| pullproof::catalog::glob_match(p, stem))
                    }
                })
            };
            let mut diags: Vec<Diagnostic> = catalog
                .diagnostics
                .iter()
                .filter(|d| {
                    sel.names.is_empty()
                        || d.file.is_none()
                        || sel.names.iter().any(|p| names_file(d, p))
                        || d.file.as_ref().is_some_and(|f| f.starts_with(&layout.baselines))
                })
                .cloned()
                .collect();
            // A name that selects nothing, valid or broken, is an error too (a typo must not pass).
            for p in &sel.names {
                let valid = selected.iter().any(|e| {
                    if pullproof::catalog::is_path(p) {
                        e.path.canonicalize().ok() == std::path::Path::new(p).canonicalize().ok()
                    } else {
                        pullproof::catalog::glob_match(p, &e.scenario.name)
                    }
                });
                if !valid
                    && !catalog.diagnostics.iter().any(|d| names_file(d, p))
                    && !pullproof::catalog::is_path(p)
                    && let Err(d) = catalog.select(std::slice::from_ref(p), &[])
                {
                    diags.push(d);
                }
            }
            if sel.output == Output::Json {
                let out = serde_json::json!({
                    "valid": selected.iter().map(|e| &e.scenario.name).collect::<Vec<_>>(),
                    "errors": diags.iter().map(|d| serde_json::json!({
                        "file": d.file, "line": d.line, "column": d.column, "message": d.message, "hint": d.hint,
                    })).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                for d in &diags {
                    eprintln!("error: {d}");
                }
                println!("{} scenario(s) valid, {} error(s)", selected.len(), diags.len());
            }
            Ok(if diags.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Plan { select, backend, requests, subscription } => {
            let catalog = Catalog::load_with(layout, &select.names);
            // A selection that names a broken file fails with that file's own errors first.
            let entries = catalog.select(&select.names, &select.tags).map_err(|d| {
                let mut diags: Vec<Diagnostic> = catalog.diagnostics_for(&select.names).into_iter().cloned().collect();
                diags.push(d);
                diags
            })?;
            let backend = BackendKind::from(backend);
            let plans: Vec<RunPlan> = entries.iter().map(|e| RunPlan::new(e, backend)).collect();
            let unsupported: Vec<&str> = entries
                .iter()
                .filter(|e| !e.scenario.backends.contains(&backend))
                .map(|e| e.scenario.name.as_str())
                .collect();
            let world = pullproof::arm::World::new(subscription, "00000000-0000-0000-0000-00000000000t");
            if select.output == Output::Json {
                let docs: Vec<serde_json::Value> = plans
                    .iter()
                    .zip(&entries)
                    .map(|(p, e)| {
                        let mut v = serde_json::to_value(p).unwrap_or_default();
                        if requests {
                            v["requests"] = requests_json(e, &world);
                        }
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&docs).unwrap_or_default());
            } else {
                for (i, (p, e)) in plans.iter().zip(&entries).enumerate() {
                    if i > 0 {
                        println!();
                    }
                    print!("{}", p.render_text());
                    if requests {
                        print!("{}", requests_text(e, &world));
                    }
                }
            }
            for name in &unsupported {
                eprintln!("warning: scenario {name} does not support backend {backend}: a run would skip it");
            }
            report_diagnostics(&catalog.diagnostics);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { which, write, check } => {
            let (text, path) = match which {
                SchemaKind::Scenario => (scenario::schema_json(), layout.scenarios.join("schema.json")),
                SchemaKind::Baseline => (scenario::baseline_schema_json(), layout.baselines.join("schema.json")),
            };
            if write {
                std::fs::write(&path, &text)
                    .map_err(|e| vec![Diagnostic::new(format!("cannot write {}: {e}", path.display()))])?;
                eprintln!("wrote {}", path.display());
            } else if check {
                let current = std::fs::read_to_string(&path).unwrap_or_default();
                if current != text {
                    return Err(vec![
                        Diagnostic::new(format!("{} is stale", path.display()))
                            .hint("run `just schema` (pullproof schema --write) and commit the result"),
                    ]);
                }
                eprintln!("{} is up to date", path.display());
            } else {
                print!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn requests_text(e: &pullproof::catalog::Entry, world: &pullproof::arm::World) -> String {
    use pullproof::arm::mutation::{Realisation, realise};
    use std::fmt::Write;
    let mut out = String::from("\n  baseline requests:\n");
    for r in pullproof::arm::provision::provision(&e.baseline, world) {
        let _ = writeln!(out, "    {}", r.line());
    }
    for (label, m) in [("fault", e.scenario.fault.mutation()), ("inverse", e.scenario.fault.inverse(&e.baseline))] {
        let _ = writeln!(out, "  {label} requests:");
        match realise(&m, &e.baseline, world) {
            Realisation::Nothing => {
                let _ = writeln!(out, "    (none)");
            }
            Realisation::Azure(reqs) => {
                for r in reqs {
                    let _ = writeln!(out, "    {}", r.line());
                }
            }
            Realisation::Cluster(op) => {
                let _ = writeln!(out, "    kubernetes: {op:?}");
            }
            Realisation::Node(op) => {
                let _ = writeln!(out, "    nodes: {op:?} (the kubelet is restarted to read it)");
            }
            Realisation::Emulator(op) => {
                let _ = writeln!(out, "    emulator control plane: {op:?}");
                let _ = writeln!(
                    out,
                    "      (no Azure API makes an existing secret expire now: the emulator edits it; a real \
                     subscription needs a short-lived secret instead, which the aks backend does not do yet)"
                );
            }
        }
    }
    out
}

fn requests_json(e: &pullproof::catalog::Entry, world: &pullproof::arm::World) -> serde_json::Value {
    use pullproof::arm::mutation::{Realisation, realise};
    let realised = |m| match realise(&m, &e.baseline, world) {
        Realisation::Azure(reqs) => serde_json::to_value(reqs).unwrap_or_default(),
        Realisation::Nothing => serde_json::json!([]),
        Realisation::Cluster(op) => serde_json::json!({ "kubernetes": format!("{op:?}") }),
        Realisation::Emulator(op) => serde_json::json!({ "emulator": format!("{op:?}") }),
        Realisation::Node(op) => serde_json::json!({ "nodes": format!("{op:?}") }),
    };
    serde_json::json!({
        "baseline": pullproof::arm::provision::provision(&e.baseline, world),
        "fault": realised(e.scenario.fault.mutation()),
        "inverse": realised(e.scenario.fault.inverse(&e.baseline)),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Vec<Diagnostic>> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| vec![Diagnostic::new(format!("cannot start the async runtime: {e}"))])
}

/// How scenarios run: how many at once, and whether worlds are kept for a person.
struct RunHow {
    parallel: usize,
    keep: bool,
    engine_user: String,
}

/// `pullproof down`: asks the owner of a kept world to remove it (SIGTERM, as Ctrl-C), and
/// waits; a world whose owner is gone is reclaimed directly.
fn down(runid: Option<&str>) -> Result<ExitCode, Vec<Diagnostic>> {
    use pullproof::backend::host::lease;
    let all = lease::all();
    let chosen: Vec<&lease::Lease> = all.iter().filter(|l| runid.is_none_or(|r| l.runid == r)).collect();
    let l = match (chosen.as_slice(), runid) {
        ([one], _) => *one,
        ([], Some(r)) => {
            return Err(vec![
                Diagnostic::new(format!("no run {r} on this machine"))
                    .hint("`pullproof clean` removes orphaned worlds"),
            ]);
        }
        ([], None) => return Err(vec![Diagnostic::new("no world is up on this machine")]),
        (many, _) => {
            let ids: Vec<&str> = many.iter().map(|l| l.runid.as_str()).collect();
            return Err(vec![
                Diagnostic::new(format!("several runs are up: {}", ids.join(", ")))
                    .hint("name one: pullproof down RUNID"),
            ]);
        }
    };
    if !l.alive() {
        let r = lease::reclaim(l);
        println!("run {} had no owner; removed {} processes, {} namespaces", l.runid, r.processes, r.namespaces);
        return Ok(ExitCode::SUCCESS);
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(l.pid as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while lease::all().iter().any(|x| x.runid == l.runid) {
        if std::time::Instant::now() > deadline {
            return Err(vec![Diagnostic::new(format!(
                "run {} is still tearing down after 2 minutes (pid {})",
                l.runid, l.pid
            ))]);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!("run {} removed", l.runid);
    Ok(ExitCode::SUCCESS)
}

fn run_scenarios<E: pullproof::run::Engine + 'static>(
    layout: &Layout,
    select: Select,
    backend: BackendKind,
    how: RunHow,
    report_dir: &std::path::Path,
    engine: E,
    show_conformance: bool,
) -> Result<ExitCode, Vec<Diagnostic>> {
    use pullproof::run::{Conformance, Progress, run_many, summary_table, write_reports};
    let catalog = Catalog::load_with(layout, &select.names);
    if !catalog.diagnostics.is_empty() {
        return Err(catalog.diagnostics);
    }
    let entries: Vec<_> =
        catalog.select(&select.names, &select.tags).map_err(|d| vec![d])?.into_iter().cloned().collect();
    if backend != BackendKind::Host {
        return Err(vec![
            Diagnostic::new(format!("the {backend} backend cannot run on this machine"))
                .hint(format!("`pullproof plan NAME --backend {backend} --requests` shows what it would do")),
        ]);
    }
    use pullproof::backend::host::{EngineUser, HostBackend, HostOptions};
    let engine_user = match how.engine_user.as_str() {
        "root" | "" => None,
        name => Some(EngineUser::lookup(name).ok_or_else(|| {
            vec![
                Diagnostic::new(format!("--engine-user `{name}`: no such unprivileged user on this machine"))
                    .hint("name an existing user other than root (e.g. nobody), or `root` to run engines as yourself"),
            ]
        })?),
    };
    if let Some(user) = engine_user
        && !user.can_reach(&layout.scenarios)
    {
        eprintln!(
            "warning: {} is not reachable by --engine-user {}: an engine kept in the project cannot start (move the checkout, or pass --engine-user root)",
            layout.scenarios.display(),
            how.engine_user
        );
    }
    let host = HostBackend::new(HostOptions { engine_user, ..HostOptions::default() });
    pullproof::backend::host::preflight(&host.options).map_err(|e| vec![Diagnostic::new(e.to_string())])?;
    for o in pullproof::backend::host::lease::orphans() {
        eprintln!(
            "warning: an orphaned world of run {} (pid {} is gone) is still on this machine in {}: `pullproof clean` removes it",
            o.runid,
            o.pid,
            o.run_dir.display()
        );
    }
    let RunHow { parallel, keep, .. } = how;
    let rt = runtime()?;
    let total = entries.len();
    let lease = host.lease_handle();
    let engine_name = engine.name();
    let started = pullproof::run::now_rfc3339();
    let clock = std::time::Instant::now();
    let finished = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (abort_tx, abort) = tokio::sync::oneshot::channel::<()>();
    let outcome = rt.block_on({
        let (entries, finished) = (entries.clone(), finished.clone());
        async move {
            let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                // Ctrl-C or SIGTERM: revert and clean up; a second signal aborts at once.
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                eprintln!("\ninterrupted: reverting and cleaning up (interrupt again to abort at once)");
                let _ = cancel_tx.send(true);
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                let _ = abort_tx.send(());
            });
            let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let progress = move |p: Progress| match p {
                Progress::Started { scenario } => eprintln!("  start    {scenario}"),
                Progress::Finished(r) => {
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    let why = if r.reason.is_empty() { String::new() } else { format!(" — {}", r.reason) };
                    eprintln!(
                        "  [{n}/{total}] {:<18} {} ({:.2}s){why}",
                        r.status.as_str(),
                        r.scenario,
                        r.millis as f64 / 1000.0
                    );
                    finished.lock().unwrap_or_else(|p| p.into_inner()).push(*r);
                }
            };
            let artifacts = report_dir.join("artifacts");
            let many = run_many(
                std::sync::Arc::new(host),
                std::sync::Arc::new(engine),
                entries,
                pullproof::run::ManyOptions { parallel, artifacts_dir: Some(&artifacts), keep },
                cancel,
                progress,
            );
            tokio::select! {
                record = many => Some(record),
                _ = abort => None,
            }
        }
    });
    let record = match outcome {
        Some(record) => record,
        None => {
            // Aborted at once: stop every task where it stands, then remove what the run's
            // world holds (the same reclaim `pullproof clean` does for a dead owner), and still
            // say what finished.
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            // From the lease in memory: the file may already be gone if teardown was under way.
            // Twice: a task still finishing on a blocking thread may start one more process.
            let reclaim = || lease.last().map(|l| pullproof::backend::host::lease::reclaim(&l)).unwrap_or_default();
            let mut reclaimed = reclaim();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let again = reclaim();
            reclaimed.processes += again.processes;
            reclaimed.containers += again.containers;
            reclaimed.namespaces += again.namespaces;
            reclaimed.mounts += again.mounts;
            let finished = std::mem::take(&mut *finished.lock().unwrap_or_else(|p| p.into_inner()));
            let record = pullproof::run::aborted(
                engine_name,
                &started,
                pullproof::run::record::millis(clock.elapsed()),
                parallel,
                &entries,
                backend,
                finished,
            );
            let _ = write_reports(&record, report_dir);
            eprintln!(
                "aborted: removed the run's world ({} processes, {} containers, {} network namespaces, {} mounts); \
                 record in {}/run.json",
                reclaimed.processes,
                reclaimed.containers,
                reclaimed.namespaces,
                reclaimed.mounts,
                report_dir.display()
            );
            std::process::exit(130);
        }
    };
    if select.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&record).unwrap_or_default());
    } else {
        print!("{}", summary_table(&record));
        if show_conformance {
            print!("\n{}", Conformance::of(&record).render_text());
        }
    }
    if let Err(e) = write_reports(&record, report_dir) {
        eprintln!("warning: cannot write reports to {}: {e}", report_dir.display());
    } else {
        eprintln!("reports: {}/run.json, {}/junit.xml", report_dir.display(), report_dir.display());
    }
    if record.cancelled {
        eprintln!("interrupted: the run is incomplete (scenarios not run are `skipped`)");
        return Ok(ExitCode::from(130));
    }
    Ok(if record.failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn report_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("error: {d}");
    }
}

/// A left-aligned text table whose last column wraps at nothing (terminals handle it).
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count().min(70));
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                l.push_str(c);
            } else {
                let shown: String =
                    if c.chars().count() > 70 { c.chars().take(67).chain("...".chars()).collect() } else { c.clone() };
                l.push_str(&format!("{shown:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|s| s.to_string()).collect(), &mut out);
    for r in rows {
        line(r.to_vec(), &mut out);
    }
    out
}
