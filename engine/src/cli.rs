//! The command line. The work is done by the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pulldoctor::detect::candidates;
use pulldoctor::report::{self, Report, exit, render_text};
use pulldoctor::symptom::Symptom;
use pulldoctor::{Evidence, diagnose};

/// Diagnoses why pods on AKS cannot pull their images from Azure Container Registry.
#[derive(Parser)]
#[command(name = "pulldoctor", version, about, propagate_version = true)]
#[command(after_help = "Exit codes: 0 healthy, 1 findings (or failing pulls without a known cause), 2 error.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explain one kubelet/containerd image-pull message: symptom class, parsed fields, likely causes.
    Explain {
        /// The message, e.g. copied from `kubectl describe pod`.
        message: String,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
    },
    /// Diagnose failing pulls from a cluster dump and an Azure inventory (offline).
    Diagnose {
        /// A `kubectl cluster-info dump --all-namespaces --output-directory DIR` directory.
        #[arg(long)]
        dump: PathBuf,
        /// A JSON inventory of ARM resources (see the README: "Azure inventory").
        #[arg(long)]
        azure: Option<PathBuf>,
        /// Judge expiry dates at this instant (RFC 3339) instead of now.
        #[arg(long)]
        now: Option<String>,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print the JSON Schema of the report (the engine contract).
    Schema,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Explain { message, output } => {
            let symptom = Symptom::parse(&message);
            let ranked = candidates(&symptom);
            if output == Output::Json {
                let doc = serde_json::json!({ "symptom": symptom, "candidates": ranked });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                print!("{}", explain_text(&symptom, &ranked));
            }
            ExitCode::SUCCESS
        }
        Command::Diagnose { dump, azure, now, output } => {
            let mut evidence = match Evidence::load(&dump, azure.as_deref()) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(exit::ERROR);
                }
            };
            if let Some(now) = now {
                match azure_model::graph::parse_time(&now) {
                    Some(t) => evidence.now = Some(t),
                    None => {
                        eprintln!("error: --now `{now}` is not an RFC 3339 time (e.g. 2026-11-22T12:00:00Z)");
                        return ExitCode::from(exit::ERROR);
                    }
                }
            }
            let diagnosis = diagnose(&evidence);
            let report = Report::from_diagnosis(&diagnosis, evidence.azure.unavailable.clone());
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", render_text(&report));
            }
            ExitCode::from(report.status.exit_code())
        }
        Command::Schema => {
            print!("{}", report::schema_json());
            ExitCode::SUCCESS
        }
    }
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
            facts.push(format!("credentials {}", serde_json::to_value(c).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()));
        }
        if let Some(st) = a.status {
            facts.push(format!("HTTP {st}"));
        }
        for (k, v) in [("token url", &a.token_url), ("dialled", &a.dialed), ("lookup of", &a.lookup_host), ("client ip", &a.client_ip)] {
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
