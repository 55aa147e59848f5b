//! `pullproof emulator serve`: run the emulator on its own until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use azure_model::Inventory;
use serde_json::json;

use crate::config::{DEFAULT_REGISTRY_TOKEN_ISSUER, DEFAULT_SUBSCRIPTION_ID, DEFAULT_TENANT_ID, EmulatorConfig};
use crate::emulator::Emulator;
use crate::error::EmulatorError;

/// A node registration on the command line: `IP=VMSS_RESOURCE_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArg {
    /// The node's source address.
    pub ip: IpAddr,
    /// Its scale set id.
    pub vmss_id: String,
}

impl std::str::FromStr for NodeArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, vmss) = s.split_once('=').ok_or("expected IP=VMSS_RESOURCE_ID")?;
        let ip = ip.trim().parse().map_err(|e| format!("`{ip}` is not an IP address: {e}"))?;
        azure_model::ResourceId::parse(vmss.trim()).map_err(|e| e.to_string())?;
        Ok(Self { ip, vmss_id: vmss.trim().to_string() })
    }
}

/// Options of `pullproof emulator serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address of the HTTPS listener (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8443", env = "PULLPROOF_EMULATOR_LISTEN")]
    pub listen: SocketAddr,
    /// Also answer IMDS over plain HTTP on this address (as the real IMDS does).
    #[arg(long)]
    pub imds_listen: Option<SocketAddr>,
    /// Entra tenant id.
    #[arg(long, default_value = DEFAULT_TENANT_ID)]
    pub tenant_id: String,
    /// Subscription id.
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION_ID)]
    pub subscription_id: String,
    /// Start from this inventory JSON (an earlier `--export-on-exit`, or `pulldoctor`'s input).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Write the state as an inventory JSON here on exit.
    #[arg(long, value_name = "FILE")]
    pub export_on_exit: Option<PathBuf>,
    /// Write the CA certificate (PEM) here: clients must trust it.
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
    /// Write the operator credential (tenant, client id, secret, endpoints) here as JSON, mode 0600.
    #[arg(long, value_name = "FILE")]
    pub credentials_out: Option<PathBuf>,
    /// Extra names for the server certificate (repeatable).
    #[arg(long = "san", value_name = "NAME")]
    pub extra_san: Vec<String>,
    /// Register a node for IMDS: `IP=VMSS_RESOURCE_ID` (repeatable).
    #[arg(long = "node", value_name = "IP=VMSS_ID")]
    pub nodes: Vec<NodeArg>,
    /// Treat registry traffic from this address as private-endpoint traffic (repeatable).
    #[arg(long = "private-source", value_name = "IP")]
    pub private_sources: Vec<IpAddr>,
    /// `iss` of registry access tokens (distribution's `auth.token.issuer`).
    #[arg(long, default_value = DEFAULT_REGISTRY_TOKEN_ISSUER)]
    pub registry_token_issuer: String,
    /// Answer the writes Azure runs asynchronously with ARM's long-running operation protocol
    /// (`Azure-AsyncOperation`, `202` + `Location`).
    #[arg(long)]
    pub async_operations: bool,
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), EmulatorError> {
    let io = |source| EmulatorError::Io { path: path.to_path_buf(), source };
    std::fs::write(path, text).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

/// Runs the emulator until Ctrl-C, printing where it listens.
pub async fn serve(args: ServeArgs) -> Result<(), EmulatorError> {
    serve_until(args, async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C; stopping");
        }
    })
    .await
}

/// Runs the emulator until `stop` completes (what [`serve`] does with Ctrl-C), then exports the
/// state if asked and shuts down gracefully.
pub async fn serve_until(args: ServeArgs, stop: impl std::future::Future<Output = ()>) -> Result<(), EmulatorError> {
    let mut config = EmulatorConfig {
        listen: args.listen,
        imds_listen: args.imds_listen,
        tenant_id: args.tenant_id.clone(),
        subscription_id: args.subscription_id.clone(),
        extra_san: args.extra_san.clone(),
        registry_token_issuer: args.registry_token_issuer.clone(),
        async_operations: args.async_operations,
        ..EmulatorConfig::default()
    };
    if let Some(path) = &args.state {
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::Io { path: path.clone(), source })?;
        config = config.with_state(Inventory::from_json(&text)?);
    }
    let emulator = Emulator::start(config).await?;
    for n in &args.nodes {
        emulator.register_node(n.ip, &n.vmss_id);
    }
    for ip in &args.private_sources {
        emulator.mark_private_source(*ip);
    }
    if let Some(path) = &args.ca_out {
        write(path, &emulator.ca_pem, false)?;
    }
    if let Some(path) = &args.credentials_out {
        let op = emulator.operator();
        let doc = json!({
            "tenantId": op.tenant_id,
            "subscriptionId": emulator.subscription_id(),
            "clientId": op.client_id,
            "clientSecret": op.client_secret.expose(),
            "authorityHost": emulator.base_url,
            "resourceManagerEndpoint": emulator.base_url,
            "graphEndpoint": emulator.base_url,
            "caFile": args.ca_out,
        });
        write(path, &serde_json::to_string_pretty(&doc).unwrap_or_default(), true)?;
    }
    println!("pullproof emulator listening on {}", emulator.base_url);
    println!("  tenant {}  subscription {}", emulator.tenant_id(), emulator.subscription_id());
    if let Some(addr) = emulator.imds_addr {
        println!("  IMDS (plain HTTP) on http://{addr}");
    }
    println!("  ACR token realm: {}", emulator.acr_token_realm("LOGIN_SERVER"));
    println!("Press Ctrl-C to stop.");
    stop.await;
    if let Some(path) = &args.export_on_exit {
        write(path, &emulator.export().to_json(), false)?;
        println!("state written to {}", path.display());
    }
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn parses_nodes_and_defaults() {
        let vmss =
            "/subscriptions/s/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np-1-vmss";
        let cli = Cli::parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--node",
            &format!("127.0.0.2={vmss}"),
            "--private-source",
            "127.0.0.3",
        ]);
        assert_eq!(cli.serve.nodes[0].vmss_id, vmss);
        assert_eq!(cli.serve.tenant_id, DEFAULT_TENANT_ID);
        assert!("nonsense".parse::<NodeArg>().is_err());
    }
}
