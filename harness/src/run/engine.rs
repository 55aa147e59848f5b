//! The engine under test, behind one interface: pulldoctor in-process, or any program that
//! honours the engine contract (see the README).

use std::future::Future;

use pulldoctor::{Evidence, Report};

use super::backend::EngineInput;

/// A diagnosis engine.
pub trait Engine: Send + Sync {
    /// Its name in reports.
    fn name(&self) -> String;
    /// Diagnoses the world described by `input`.
    fn diagnose(&self, input: &EngineInput) -> impl Future<Output = Result<Report, String>> + Send;
}

/// pulldoctor, linked in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pulldoctor;

impl Engine for Pulldoctor {
    fn name(&self) -> String {
        format!("pulldoctor {}", env!("CARGO_PKG_VERSION"))
    }

    /// Kubernetes from the dump; Azure live over ARM and Graph when the world offers an endpoint
    /// and a login (the same collector `pulldoctor diagnose` uses against Azure), and the
    /// registries' tags and platforms live from their data plane; else all from the inventory file.
    fn diagnose(&self, input: &EngineInput) -> impl Future<Output = Result<Report, String>> + Send {
        let input = input.clone();
        async move {
            let mut exported_unavailable = Vec::new();
            let load = input.clone();
            let (mut evidence, exported) = tokio::task::spawn_blocking(move || {
                let evidence = match &load.kubeconfig {
                    Some(_) => Evidence::default(),
                    None => Evidence::load(&load.dump_dir, None).map_err(|e| e.to_string())?,
                };
                let text = std::fs::read_to_string(&load.inventory).map_err(|e| format!("inventory: {e}"))?;
                let exported = azure_model::Inventory::from_json(&text).map_err(|e| format!("inventory: {e}"))?;
                Ok::<_, String>((evidence, exported))
            })
            .await
            .map_err(|e| format!("engine task failed: {e}"))??;
            // Kubernetes live through the API server, as `pulldoctor diagnose` reads a cluster.
            if let Some(kubeconfig) = &input.kubeconfig {
                let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| format!("kubeconfig: {e}"))?;
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .map_err(|e| format!("kubeconfig: {e}"))?;
                let client = kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))?;
                let selection = pulldoctor::collect::k8s::Selection {
                    namespace: Some(input.namespace.clone()),
                    pod: input.pod.clone(),
                    ..Default::default()
                };
                // kube-rs's list streams are not `Send` for every lifetime the Engine contract
                // asks; the collection runs on a blocking thread of the same runtime instead.
                let handle = tokio::runtime::Handle::current();
                let k = tokio::task::spawn_blocking(move || {
                    handle.block_on(pulldoctor::collect::k8s::collect(client, &selection, Default::default()))
                })
                .await
                .map_err(|e| format!("engine task failed: {e}"))?
                .map_err(|e| e.to_string())?;
                evidence.pods = k.pods;
                evidence.events = k.events;
                evidence.nodes = k.nodes;
                evidence.secrets = k.secrets;
                evidence.service_accounts = k.service_accounts;
                evidence.replica_sets = k.replica_sets;
                exported_unavailable.extend(k.unavailable);
            }
            match (&input.arm_endpoint, &input.azure_login) {
                (Some(arm), Some(login)) => {
                    let ca = match &input.ca_file {
                        Some(f) => vec![std::fs::read_to_string(f).map_err(|e| format!("CA file: {e}"))?],
                        None => vec![],
                    };
                    let config = pulldoctor::collect::AzureConfig {
                        arm_endpoint: arm.clone(),
                        graph_endpoint: login.graph_endpoint.clone(),
                        ca_pem: ca,
                        auth: pulldoctor::credential::AzureAuth::ClientCredentials {
                            token_url: login.token_url.clone(),
                            client_id: login.client_id.clone(),
                            client_secret: login.client_secret.clone(),
                        },
                        read_graph: true,
                        backoff: None,
                    };
                    let clients = config.clients().map_err(|e| e.to_string())?;
                    let hints = pulldoctor::collect::hints(&evidence, &Default::default());
                    let live =
                        pulldoctor::collect::azure::collect(&clients, &hints).await.map_err(|e| e.to_string())?;
                    evidence.azure = live;
                    let options = pulldoctor::collect::registry::RegistryOptions {
                        ca_pem: config.ca_pem.clone(),
                        addresses: input.registry_addresses.clone(),
                    };
                    pulldoctor::collect::registry::enrich(&mut evidence, &clients, &options).await;
                }
                _ => evidence.azure = exported,
            }
            evidence.azure.unavailable.splice(0..0, exported_unavailable);
            let diagnosis = pulldoctor::diagnose(&evidence);
            Ok(pulldoctor::collect::report(&diagnosis, &evidence))
        }
    }
}

/// Any program that honours the engine contract: it gets its inputs in environment variables
/// and writes a report (engine/schema/report.schema.json) on stdout.
///
/// | variable | meaning |
/// |---|---|
/// | `PULLPROOF_DUMP_DIR` | a `kubectl cluster-info dump --output-directory` directory (plus `NS/secrets.json`, `NS/serviceaccounts.json`) |
/// | `PULLPROOF_KUBECONFIG` | a kubeconfig with read access to the namespace and the nodes (live reads) |
/// | `PULLPROOF_AZURE_INVENTORY` | a JSON inventory of ARM resource bodies |
/// | `PULLPROOF_NAMESPACE` | the workload's namespace |
/// | `PULLPROOF_POD` | a pod of the workload (the failing one) |
/// | `PULLPROOF_ARM_ENDPOINT` | the ARM endpoint, for engines that query it live |
/// | `PULLPROOF_CA_FILE` | a PEM CA to trust for the ARM and Graph endpoints |
/// | `PULLPROOF_ARM_TOKEN` | a bearer token for that endpoint |
/// | `PULLPROOF_GRAPH_ENDPOINT`, `PULLPROOF_GRAPH_TOKEN` | Microsoft Graph and a bearer token for it |
/// | `PULLPROOF_REGISTRY_ADDRESSES` | `LOGIN=IP:PORT[,...]`: where to reach each registry's data plane (`/v2/`, `/oauth2/`) |
///
/// Exit code 0 or 1 with a report on stdout is an answer; anything else is an engine failure.
#[derive(Debug, Clone)]
pub struct External {
    /// The command, run with `sh -c`.
    pub command: String,
    /// How long one diagnosis may take.
    pub timeout: std::time::Duration,
}

impl Engine for External {
    fn name(&self) -> String {
        self.command.clone()
    }

    fn diagnose(&self, input: &EngineInput) -> impl Future<Output = Result<Report, String>> + Send {
        let (command, input, timeout) = (self.command.clone(), input.clone(), self.timeout);
        async move {
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c")
                .arg(&command)
                .env("PULLPROOF_DUMP_DIR", &input.dump_dir)
                .env("PULLPROOF_AZURE_INVENTORY", &input.inventory)
                .env("PULLPROOF_NAMESPACE", &input.namespace)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            if let Some(e) = &input.arm_endpoint {
                cmd.env("PULLPROOF_ARM_ENDPOINT", e);
            }
            if let Some(k) = &input.kubeconfig {
                cmd.env("PULLPROOF_KUBECONFIG", k);
            }
            if let Some(ca) = &input.ca_file {
                cmd.env("PULLPROOF_CA_FILE", ca);
            }
            let optional = [
                ("PULLPROOF_POD", &input.pod),
                ("PULLPROOF_ARM_TOKEN", &input.arm_token),
                ("PULLPROOF_GRAPH_ENDPOINT", &input.graph_endpoint),
                ("PULLPROOF_GRAPH_TOKEN", &input.graph_token),
            ];
            for (name, value) in optional {
                if let Some(v) = value {
                    cmd.env(name, v);
                }
            }
            if let Some(dir) = &input.dir {
                let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
                cmd.current_dir(dir).env("HOME", dir).env("PATH", format!("{}:{path}", dir.join("bin").display()));
            }
            if let Some((uid, gid)) = input.run_as {
                cmd.uid(uid).gid(gid);
            }
            if !input.registry_addresses.is_empty() {
                let list: Vec<String> = input.registry_addresses.iter().map(|(l, a)| format!("{l}={a}")).collect();
                cmd.env("PULLPROOF_REGISTRY_ADDRESSES", list.join(","));
            }
            // Its own process group: whatever it starts goes when it is done or out of time.
            cmd.process_group(0).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            let child = cmd.spawn().map_err(|e| format!("cannot run `{command}`: {e}"))?;
            let group = child.id().and_then(|id| i32::try_from(id).ok());
            let kill_group = || {
                if let Some(g) = group {
                    // SAFETY: killpg only sends a signal; a group that is gone answers ESRCH.
                    unsafe { libc::killpg(g, libc::SIGKILL) };
                }
            };
            let waited = tokio::time::timeout(timeout, child.wait_with_output()).await;
            kill_group();
            let out = waited
                .map_err(|_| format!("`{command}` took longer than {}s and was stopped", timeout.as_secs()))?
                .map_err(|e| format!("cannot run `{command}`: {e}"))?;
            let code = out.status.code().unwrap_or(-1);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: String =
                stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            if code != 0 && code != 1 {
                return Err(format!("`{command}` exited with {code}: {tail}"));
            }
            serde_json::from_slice::<Report>(&out.stdout).map_err(|e| {
                format!("`{command}` did not write a report following engine/schema/report.schema.json: {e}")
            })
        }
    }
}

/// Two engines on the same input: the report of `first`, unless the two name different causes,
/// which is an engine failure naming both answers. Used to hold one engine's modes to each
/// other (pulldoctor offline from the dump and inventory, and live), scenario by scenario.
#[derive(Debug, Clone)]
pub struct Compare<A, B> {
    /// The engine whose report is graded.
    pub first: A,
    /// The engine it must agree with.
    pub second: B,
}

impl<A: Engine + Clone + 'static, B: Engine + Clone + 'static> Engine for Compare<A, B> {
    fn name(&self) -> String {
        format!("{} (checked against {})", self.first.name(), self.second.name())
    }

    fn diagnose(&self, input: &EngineInput) -> impl Future<Output = Result<Report, String>> + Send {
        let (first, second, input) = (self.first.clone(), self.second.clone(), input.clone());
        async move {
            let (a, b) = tokio::join!(first.diagnose(&input), second.diagnose(&input));
            let a = a?;
            let b = b.map_err(|e| format!("{} failed: {e}", second.name()))?;
            let codes = |r: &Report| {
                let mut c: Vec<&str> = r.codes().iter().filter(|c| c.is_cause()).map(|c| c.as_str()).collect();
                c.sort();
                c.dedup();
                c
            };
            if codes(&a) != codes(&b) {
                return Err(format!(
                    "{} reported [{}] but {} reported [{}]",
                    first.name(),
                    codes(&a).join(", "),
                    second.name(),
                    codes(&b).join(", ")
                ));
            }
            Ok(a)
        }
    }
}
