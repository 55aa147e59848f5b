//! The command line. The work is done by the library.

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::IsTerminal;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pulldoctor::apply;
use pulldoctor::collect::{self, AzureConfig, KubeOptions, Selection, Target};
use pulldoctor::credential::AzureAuth;
use pulldoctor::evidence::{EngineIdentity, PodSelection, PrincipalKind};
use pulldoctor::explain::Explanation;
use pulldoctor::report::{self, exit, render_text};
use pulldoctor::symptom::Symptom;
use pulldoctor::{Evidence, diagnose};

/// Writes to stdout. A reader that went away (`pulldoctor explain ... | head`) ends the program
/// quietly, as `cat` does, instead of a panic.
fn emit(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

macro_rules! out {
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

macro_rules! outln {
    () => { emit(format_args!("\n")) };
    ($($arg:tt)*) => { emit(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Diagnoses why pods on AKS cannot pull their images from Azure Container Registry.
#[derive(Parser)]
#[command(name = "pulldoctor", version, about, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 healthy, 1 findings (or failing pulls without a known cause), 2 error. Warnings about evidence pulldoctor could not read never change the exit code."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explain one kubelet/containerd image-pull message: symptom class, parsed fields, likely causes.
    Explain {
        /// The message, e.g. copied from `kubectl describe pod`; `-` reads it from stdin (for
        /// messages longer than the command line allows).
        message: String,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
    },
    /// Diagnose failing pulls: live (kubeconfig or in-cluster, and Azure), or offline from a
    /// cluster dump and an Azure inventory (`--dump DIR --azure FILE`).
    #[command(
        after_help = "Exit codes: 0 healthy, 1 findings (or failing pulls without a known cause), 2 error. Warnings about evidence pulldoctor could not read never change the exit code."
    )]
    Diagnose {
        #[command(flatten)]
        source: SourceArgs,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show the plan that fixes the findings (dry run), or apply it with `--apply`.
    #[command(
        after_help = "Exit codes: 0 nothing left to do, 1 steps remain (dry run, or steps for a person), 2 error or a failed step."
    )]
    Fix {
        #[command(flatten)]
        source: SourceArgs,
        /// Carry the plan out (the default is a dry run that only reads).
        #[arg(long)]
        apply: bool,
        /// Do not ask for confirmation on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Output format (JSON: the plan, its requests and the audit trail).
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print a JSON Schema: of the report (the engine contract, the default) or of `explain -o json`.
    Schema {
        /// Which document.
        #[arg(value_enum, default_value = "report")]
        document: SchemaDoc,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SchemaDoc {
    /// `diagnose -o json` (engine/schema/report.schema.json).
    Report,
    /// `explain -o json` (engine/schema/explain.schema.json).
    Explain,
}

/// Where the evidence comes from.
#[derive(Args, Clone)]
struct SourceArgs {
    /// Offline: a `kubectl cluster-info dump --all-namespaces --output-directory DIR` directory.
    #[arg(long, help_heading = "Offline")]
    dump: Option<PathBuf>,
    /// A JSON inventory of ARM resources (see the README: "Azure inventory"); with it, Azure is
    /// not read live.
    #[arg(long, help_heading = "Offline")]
    azure: Option<PathBuf>,
    /// Judge expiry dates at this instant (RFC 3339) instead of now.
    #[arg(long)]
    now: Option<String>,

    /// The pod to diagnose (default: every pod of the namespace waiting on an image). Offline,
    /// a pod the dump does not hold is an error.
    #[arg(value_name = "POD", help_heading = "Pods")]
    pod: Option<String>,
    /// The namespace (default: the kubeconfig context's; offline: every namespace of the dump).
    #[arg(long, short = 'n', help_heading = "Pods")]
    namespace: Option<String>,
    /// Every namespace.
    #[arg(long, short = 'A', conflicts_with_all = ["namespace", "pod"], help_heading = "Pods")]
    all_namespaces: bool,
    /// Only pods matching this label selector (`app=web`, `tier!=db`, `env in (a,b)`).
    #[arg(long, short = 'l', conflicts_with = "pod", help_heading = "Pods")]
    selector: Option<String>,
    /// The kubeconfig context (default: the current one).
    #[arg(long, help_heading = "Live")]
    context: Option<String>,
    /// The AKS cluster, `RESOURCE_GROUP/NAME` (default: found from the nodes' provider ids).
    #[arg(long, value_parser = parse_cluster, help_heading = "Live")]
    cluster: Option<(String, String)>,
    /// The subscription (default: from the nodes' provider ids, `AZURE_SUBSCRIPTION_ID`, or the
    /// only one the credential sees).
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID", help_heading = "Live")]
    subscription: Option<String>,
    /// Do not read Azure (Kubernetes evidence only).
    #[arg(long, help_heading = "Live")]
    no_azure: bool,
    /// Do not read Microsoft Graph (application secret expiry).
    #[arg(long, help_heading = "Live")]
    no_graph: bool,
    /// Do not read registries' content (tags, platforms) from ACR's data plane.
    #[arg(long, help_heading = "Live")]
    no_registry: bool,
    /// Connect to this address for a registry instead of resolving its name, `LOGIN=IP:PORT`
    /// (repeatable or comma-separated; like curl's `--connect-to`), e.g. a tunnel to a private
    /// endpoint.
    #[arg(long = "registry-address", value_name = "LOGIN=IP:PORT", value_parser = parse_registry_address, value_delimiter = ',', help_heading = "Live")]
    registry_addresses: Vec<(String, std::net::SocketAddr)>,
    /// Print what the collection cost (requests, time) on stderr.
    #[arg(long, help_heading = "Live")]
    stats: bool,

    /// The ARM endpoint.
    #[arg(long, env = "PULLDOCTOR_ARM_ENDPOINT", default_value = azure_rest::ARM_ENDPOINT, help_heading = "Azure")]
    arm_endpoint: String,
    /// The Microsoft Graph endpoint.
    #[arg(long, env = "PULLDOCTOR_GRAPH_ENDPOINT", default_value = azure_rest::GRAPH_ENDPOINT, help_heading = "Azure")]
    graph_endpoint: String,
    /// A PEM CA bundle to trust besides the system roots (e.g. pullproof's emulator CA).
    #[arg(long, env = "PULLDOCTOR_CA_FILE", help_heading = "Azure")]
    ca_file: Option<PathBuf>,
    /// Client credentials instead of the azure_identity chain: the token endpoint
    /// (`https://HOST/TENANT/oauth2/v2.0/token`).
    #[arg(long, env = "PULLDOCTOR_TOKEN_URL", requires_all = ["client_id", "client_secret"], help_heading = "Azure")]
    token_url: Option<String>,
    /// The client id for `--token-url`.
    #[arg(long, env = "PULLDOCTOR_CLIENT_ID", help_heading = "Azure")]
    client_id: Option<String>,
    /// The client secret for `--token-url` (prefer the environment variable).
    #[arg(long, env = "PULLDOCTOR_CLIENT_SECRET", hide_env_values = true, help_heading = "Azure")]
    client_secret: Option<String>,
    /// A bearer token used for ARM and Graph as is (e.g. from `az account get-access-token`).
    #[arg(
        long,
        env = "PULLDOCTOR_ACCESS_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_url",
        help_heading = "Azure"
    )]
    access_token: Option<String>,
}

fn parse_cluster(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((rg, name)) if !rg.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((rg.to_string(), name.to_string()))
        }
        _ => Err(format!("`{s}` is not RESOURCE_GROUP/NAME")),
    }
}

fn parse_registry_address(s: &str) -> Result<(String, std::net::SocketAddr), String> {
    let (login, addr) = s.split_once('=').ok_or_else(|| format!("`{s}` is not LOGIN=IP:PORT"))?;
    let login = login.trim().to_ascii_lowercase();
    if login.is_empty() {
        return Err(format!("`{s}` names no login server"));
    }
    let addr = addr.trim().parse().map_err(|e| format!("`{addr}` is not IP:PORT: {e}"))?;
    Ok((login, addr))
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    match cli.command {
        Command::Explain { message, output } => {
            let message = if message == "-" {
                let mut text = String::new();
                if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                    eprintln!("error: cannot read the message from stdin: {e}");
                    return ExitCode::from(exit::ERROR);
                }
                text
            } else {
                message
            };
            let explanation = Explanation::of(message.trim());
            if output == Output::Json {
                outln!("{}", serde_json::to_string_pretty(&explanation).unwrap_or_default());
            } else {
                out!("{}", explain_text(&explanation.symptom, &explanation.candidates));
            }
            ExitCode::SUCCESS
        }
        Command::Diagnose { source, output } => {
            let gathered = match gather(&source) {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(exit::ERROR);
                }
            };
            let diagnosis = diagnose(&gathered.evidence);
            // Live or offline, the same report: findings resting on unavailable evidence (an
            // inventory's `unavailable` entries) have their confidence lowered, as in `fix`.
            let report = collect::report(&diagnosis, &gathered.evidence);
            if output == Output::Json {
                outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                out!("{}", render_text(&report));
            }
            ExitCode::from(report.status.exit_code())
        }
        Command::Fix { source, apply, yes, output } => fix(&source, apply, yes, output),
        Command::Schema { document } => {
            match document {
                SchemaDoc::Report => out!("{}", report::schema_json()),
                SchemaDoc::Explain => out!("{}", pulldoctor::explain::schema_json()),
            }
            ExitCode::SUCCESS
        }
    }
}

/// Evidence and, for live runs, the connections used to collect it.
struct Gathered {
    evidence: Evidence,
    runtime: Option<tokio::runtime::Runtime>,
    connections: apply::Connections,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())
}

fn azure_config(src: &SourceArgs) -> Result<AzureConfig, String> {
    let mut ca_pem = Vec::new();
    if let Some(f) = &src.ca_file {
        ca_pem.push(std::fs::read_to_string(f).map_err(|e| format!("cannot read --ca-file {}: {e}", f.display()))?);
    }
    let auth = match (&src.token_url, &src.access_token) {
        (Some(url), _) => AzureAuth::ClientCredentials {
            token_url: url.clone(),
            client_id: src.client_id.clone().unwrap_or_default(),
            client_secret: src.client_secret.clone().unwrap_or_default(),
        },
        (None, Some(t)) => AzureAuth::Token(t.clone()),
        (None, None) => AzureAuth::Chain,
    };
    Ok(AzureConfig {
        arm_endpoint: src.arm_endpoint.clone(),
        graph_endpoint: src.graph_endpoint.clone(),
        ca_pem,
        auth,
        read_graph: !src.no_graph,
        backoff: None,
    })
}

fn load_inventory(path: &std::path::Path) -> Result<azure_model::Inventory, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read Azure inventory {}: {e}", path.display()))?;
    azure_model::Inventory::from_json(&text)
        .map_err(|e| format!("Azure inventory {} is not valid: {e}", path.display()))
}

fn gather(src: &SourceArgs) -> Result<Gathered, String> {
    let mut g = if let Some(dump) = &src.dump {
        // Offline: the dump, narrowed to the pods a live run with the same flags would read.
        let mut evidence = Evidence::load(dump, src.azure.as_deref()).map_err(|e| e.to_string())?;
        let selection = PodSelection {
            namespace: src.namespace.as_deref(),
            pod: src.pod.as_deref(),
            selector: src.selector.as_deref(),
        };
        evidence.select(&selection).map_err(|e| format!("{e} ({})", dump.display()))?;
        Gathered { evidence, runtime: None, connections: apply::Connections::default() }
    } else {
        let rt = runtime()?;
        let config = if src.no_azure || src.azure.is_some() { None } else { Some(azure_config(src)?) };
        let azure = match &config {
            Some(c) => Some(c.clients().map_err(|e| e.to_string())?),
            None => None,
        };
        let selection = Selection {
            namespace: src.namespace.clone(),
            all_namespaces: src.all_namespaces,
            pod: src.pod.clone(),
            selector: src.selector.clone(),
        };
        let target = Target { subscription: src.subscription.clone(), cluster: src.cluster.clone() };
        let registry = match &config {
            Some(c) if !src.no_registry => Some(collect::RegistryOptions {
                ca_pem: c.ca_pem.clone(),
                addresses: src.registry_addresses.iter().cloned().collect(),
            }),
            _ => None,
        };
        let (live, kube) = rt.block_on(async {
            let kube = collect::k8s::client(src.context.as_deref()).await.map_err(|e| e.to_string())?;
            let live = collect::collect_live_with(
                kube.clone(),
                &selection,
                KubeOptions::default(),
                azure.as_ref(),
                &target,
                registry.as_ref(),
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok::<_, String>((live, kube))
        })?;
        if src.stats {
            eprintln!(
                "collected in {:.2?}: {} Kubernetes, {} ARM, {} Graph, {} registry requests; {} failing pod(s), {} unavailable read(s)",
                live.elapsed,
                live.kube_requests,
                live.arm_requests,
                live.graph_requests,
                live.registry_requests,
                live.evidence.pods.len(),
                live.evidence.azure.unavailable.len()
            );
        }
        let mut evidence = live.evidence;
        // Azure reads were refused: the fix names the identity pulldoctor ran as.
        let refused = evidence
            .azure
            .unavailable
            .iter()
            .any(|u| u.what.starts_with("azure:") && u.what != collect::azure::what::ARM);
        if let Some(c) = config.as_ref().filter(|_| refused) {
            evidence.engine_identity = rt.block_on(engine_identity(c));
        }
        if let Some(path) = &src.azure {
            let mut inv = load_inventory(path)?;
            inv.unavailable.splice(0..0, evidence.azure.unavailable.drain(..));
            evidence.azure = inv;
        }
        let connections = apply::Connections {
            arm: azure.as_ref().map(|a| a.arm.clone()),
            graph: azure.as_ref().and_then(|a| a.graph.clone()),
            kube: Some(std::sync::Arc::new(kube)),
        };
        Gathered { evidence, runtime: Some(rt), connections }
    };
    if let Some(now) = &src.now {
        match azure_model::graph::parse_time(now) {
            Some(t) => g.evidence.now = Some(t),
            None => return Err(format!("--now `{now}` is not an RFC 3339 time (e.g. 2026-11-22T12:00:00Z)")),
        }
    }
    Ok(g)
}

/// Who pulldoctor authenticates to Azure as: the claims of one of its tokens, else the client
/// id of explicit client credentials.
async fn engine_identity(config: &AzureConfig) -> Option<EngineIdentity> {
    let http = pulldoctor::credential::http_client(&config.ca_pem).ok()?;
    let token = config.auth.token_source(http).token(azure_rest::ARM_SCOPE).await.ok();
    let mut id = token.and_then(|t| EngineIdentity::from_access_token(&t.token));
    if let AzureAuth::ClientCredentials { client_id, .. } = &config.auth {
        let id =
            id.get_or_insert_with(|| EngineIdentity { kind: PrincipalKind::ServicePrincipal, ..Default::default() });
        if id.app_id.is_none() && id.kind != PrincipalKind::ManagedIdentity {
            id.app_id = Some(client_id.clone());
            id.kind = PrincipalKind::ServicePrincipal;
        }
    }
    id
}

fn fix(src: &SourceArgs, apply_it: bool, yes: bool, output: Output) -> ExitCode {
    let mut g = match gather(src) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let diagnosis = diagnose(&g.evidence);
    let report = collect::report(&diagnosis, &g.evidence);
    // The causes' plans. A meta finding's grants (evidence pulldoctor could not read) stay in
    // the report: they fix pulldoctor's view, not the pulls, and never make the exit code.
    let actions: Vec<pulldoctor::Action> =
        report.findings.iter().filter(|f| f.code.is_cause()).flat_map(|f| f.plan.actions.iter().cloned()).collect();
    let now = g.evidence.now();
    let steps = apply::translate(&actions, &apply::PlanContext { inventory: &g.evidence.azure, now });

    // Offline evidence with an ARM endpoint given explicitly: connect to Azure to check/apply.
    if g.runtime.is_none() && (apply_it || src.token_url.is_some() || src.access_token.is_some()) && !src.no_azure {
        match azure_config(src).and_then(|c| c.clients().map_err(|e| e.to_string())) {
            Ok(c) => {
                g.connections.arm = Some(c.arm);
                g.connections.graph = c.graph;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::ERROR);
            }
        }
        match runtime() {
            Ok(rt) => g.runtime = Some(rt),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::ERROR);
            }
        }
    }

    if output == Output::Text {
        out!("{}", render_text(&report));
        outln!();
        outln!("plan:");
        out!("{}", apply::render_plan(&steps));
    }
    let automatic = steps.iter().any(|s| s.manual.is_none());
    if apply_it && automatic && !yes && std::io::stdin().is_terminal() {
        eprint!("apply these changes? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing applied");
            return ExitCode::from(exit::FINDINGS);
        }
    }
    let executor = apply::Executor { connections: g.connections.clone(), apply: apply_it, now };
    let audit = match &g.runtime {
        Some(rt) => rt.block_on(executor.run(&steps)),
        None => {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(exit::ERROR);
                }
            };
            rt.block_on(executor.run(&steps))
        }
    };
    if output == Output::Json {
        // The report itself (so `fix --apply -o json` answers the engine contract as an engine
        // that fixes things itself), with the plan and audit beside it. `alreadyFixed`: there
        // was something to fix and, after this run, every step is done (applied now, or found
        // done); a healthy cluster had nothing to fix.
        let mut fixed = report.clone();
        fixed.already_fixed = !audit.records.is_empty() && !audit.failed() && !audit.pending();
        let mut doc = serde_json::to_value(&fixed).unwrap_or_default();
        if let Some(o) = doc.as_object_mut() {
            o.insert("alreadyFixed".into(), fixed.already_fixed.into());
            o.insert("plan".into(), serde_json::to_value(&steps).unwrap_or_default());
            o.insert("audit".into(), serde_json::to_value(&audit).unwrap_or_default());
        }
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        outln!();
        out!("{}", apply::render_audit(&audit));
    }
    if steps.is_empty() {
        return ExitCode::from(report.status.exit_code());
    }
    ExitCode::from(audit.exit_code())
}

fn explain_text(s: &Symptom, ranked: &[pulldoctor::detect::Candidate]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "symptom: {}", s.class);
    if let Some(img) = &s.image {
        let _ = writeln!(out, "image:   {img} (registry {}, repository {})", img.registry, img.repository);
    }
    for (i, a) in s.attempts.iter().enumerate() {
        let mut facts = vec![format!("class {}", a.class)];
        if let Some(c) = a.credentials {
            facts.push(format!(
                "credentials {}",
                serde_json::to_value(c).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            ));
        }
        if let Some(st) = a.status {
            facts.push(format!("HTTP {st}"));
        }
        match a.stage {
            Some(pulldoctor::symptom::PullStage::Blob) => {
                facts.push("after the manifest resolved (blob download)".into())
            }
            Some(pulldoctor::symptom::PullStage::Resolve) => facts.push("resolving the reference".into()),
            None => {}
        }
        for (k, v) in [
            ("token url", &a.token_url),
            ("data host", &a.data_host),
            ("dialled", &a.dialed),
            ("lookup of", &a.lookup_host),
            ("resolver", &a.resolver),
            ("client ip", &a.client_ip),
        ] {
            if let Some(v) = v {
                facts.push(format!("{k} {v}"));
            }
        }
        let _ = writeln!(out, "attempt {}: {}", i + 1, facts.join(", "));
    }
    if ranked.is_empty() {
        let _ = writeln!(out, "\nno known ACR/AKS cause matches this symptom");
    } else {
        let _ = writeln!(out, "\nlikely causes (the symptom alone; `pulldoctor diagnose` confirms with evidence):");
        for c in ranked {
            let _ = writeln!(out, "  {:>3}%  {:<30} check: {}", c.score, c.code.as_str(), c.confirm_with);
        }
    }
    out
}
