//! A private containerd: its own config, root, state and gRPC socket, CRI enabled.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cri::{Auth, Cri, PullError, RuntimeVersion};
use crate::ctr::{CtrOptions, CtrPullOutput, ctr_pull};
use crate::process::{DaemonError, Launcher, ProcessGuard, Stopped};

/// The CRI `sandbox_image` the private daemon is configured with: a local name that is never
/// fetched (pulls do not need a sandbox).
pub const DEFAULT_SANDBOX_IMAGE: &str = "pullproof.invalid/pause:local";

/// How to start a private containerd. `Default` gives a daemon in the caller's namespaces, a
/// fresh temp dir, no extra CA, a 10 s start-up budget.
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// The containerd binary.
    pub binary: PathBuf,
    /// Where the daemon's temp dir is created (default: `std::env::temp_dir()`); keep it short,
    /// Unix socket paths are limited to 107 bytes.
    pub base_dir: Option<PathBuf>,
    /// `SSL_CERT_FILE` for the daemon: a PEM bundle of the system CAs plus the test CA. Go reads
    /// it instead of the system store, so it must contain everything the daemon should trust.
    pub ssl_cert_file: Option<PathBuf>,
    /// Where stdout+stderr go; default `<temp dir>/containerd.log` (removed with the temp dir).
    /// Give a path outside to keep the log as an artifact.
    pub log_file: Option<PathBuf>,
    /// How the daemon (and `ctr` pulls through [`Containerd::ctr_pull`]) are launched: e.g.
    /// [`Launcher::netns_with_resolv`] for a node in a network namespace.
    pub launcher: Launcher,
    /// CRI pinned `sandbox` image (imported, never pulled).
    pub sandbox_image: String,
    /// runc (the OCI runtime the shim calls).
    pub runc: PathBuf,
    /// Where the CNI plugins are (Debian's `containernetworking-plugins`: `/usr/lib/cni`).
    pub cni_bin_dir: PathBuf,
    /// CRI snapshotter (`overlayfs` by default; `native` works on any filesystem).
    pub snapshotter: String,
    /// containerd `--log-level`.
    pub log_level: String,
    /// Start-up budget: how long the CRI `Version` call is polled.
    pub startup_timeout: Duration,
    /// Extra TOML appended verbatim to the generated config (advanced).
    pub extra_toml: String,
    /// A CNI network configuration list (JSON) for pods, written to the daemon's CNI conf dir.
    pub cni_network: Option<String>,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self {
            binary: crate::components::Components::pinned().containerd("containerd"),
            base_dir: None,
            ssl_cert_file: None,
            log_file: None,
            launcher: Launcher::direct(),
            sandbox_image: DEFAULT_SANDBOX_IMAGE.into(),
            runc: "/usr/sbin/runc".into(),
            cni_bin_dir: "/usr/lib/cni".into(),
            snapshotter: "overlayfs".into(),
            log_level: "info".into(),
            startup_timeout: Duration::from_secs(10),
            extra_toml: String::new(),
            cni_network: None,
        }
    }
}

/// A running private containerd. Dropping it stops the daemon's process group (SIGTERM, SIGKILL
/// after 2 s), detaches any mount left below its directory and removes its temp dir.
#[derive(Debug)]
pub struct Containerd {
    // Field order matters: the process is stopped (in Drop) before the temp dir goes.
    process: ProcessGuard,
    cri: Cri,
    version: RuntimeVersion,
    startup: Duration,
    socket: PathBuf,
    certs_d: PathBuf,
    config_file: PathBuf,
    ssl_cert_file: Option<PathBuf>,
    launcher: Launcher,
    dir: tempfile::TempDir,
}

impl Containerd {
    /// Writes the config, starts the daemon and waits until CRI `Version` answers.
    pub async fn start(config: ContainerdConfig) -> Result<Self, DaemonError> {
        let base = config.base_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir =
            tempfile::Builder::new().prefix("ppctd-").tempdir_in(&base).map_err(|source| prepare(&base, source))?;
        let root = dir.path();
        let socket = root.join("containerd.sock");
        let certs_d = root.join("certs.d");
        let cni = root.join("cni");
        for d in [&certs_d, &cni] {
            std::fs::create_dir_all(d).map_err(|e| prepare(d, e))?;
        }
        if let Some(conflist) = &config.cni_network {
            let f = cni.join("10-pullproof.conflist");
            std::fs::write(&f, conflist).map_err(|e| prepare(&f, e))?;
        }
        let config_file = root.join("config.toml");
        std::fs::write(&config_file, render_config(&config, root)).map_err(|e| prepare(&config_file, e))?;
        let log = config.log_file.clone().unwrap_or_else(|| root.join("containerd.log"));

        let mut cmd = config.launcher.command(
            config.binary.as_os_str(),
            ["--config".as_ref(), config_file.as_os_str(), "--log-level".as_ref(), config.log_level.as_ref()],
        );
        if let Some(bundle) = &config.ssl_cert_file {
            cmd.env("SSL_CERT_FILE", bundle);
        }
        // The shim is looked up on PATH: the one built with this containerd comes first.
        if let Some(bin) = config.binary.parent().filter(|d| !d.as_os_str().is_empty()) {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![bin.to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(dirs) {
                cmd.env("PATH", joined);
            }
        }
        let started = Instant::now();
        let process = ProcessGuard::spawn("containerd", &config.launcher, cmd, &log)?;
        let probe_socket = socket.clone();
        let (cri, version) =
            crate::process::wait_ready(&process, &socket, config.startup_timeout, Duration::from_millis(10), || {
                let s = probe_socket.clone();
                async move {
                    let cri = Cri::connect(&s).await.map_err(|e| e.to_string())?;
                    let v = cri.version().await.map_err(|e| e.to_string())?;
                    Ok((cri, v))
                }
            })
            .await?;
        let startup = started.elapsed();
        tracing::info!(pid = process.pid(), ?startup, socket = %socket.display(), "containerd ready");
        Ok(Self {
            process,
            cri,
            version,
            startup,
            socket,
            certs_d,
            config_file,
            ssl_cert_file: config.ssl_cert_file,
            launcher: config.launcher,
            dir,
        })
    }

    /// A CRI client connected to this daemon.
    pub fn cri(&self) -> &Cri {
        &self.cri
    }

    /// The daemon's gRPC (and CRI) socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// From spawn to the first successful CRI `Version`.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// What CRI `Version` answered at start-up.
    pub fn version(&self) -> &RuntimeVersion {
        &self.version
    }

    /// The daemon's pid (also its process group id).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The daemon's log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// The generated config file.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// The daemon's private directory (config, root, state, socket, certs.d).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CRI registry `config_path`: one folder per registry host holding a `hosts.toml`.
    pub fn certs_d(&self) -> &Path {
        &self.certs_d
    }

    /// Writes `certs.d/<host>/hosts.toml` (read by containerd at every pull, so it can change
    /// while the daemon runs). `host` is the registry host as written in image references,
    /// including any port (`myacr.azurecr.io`, `127.0.0.1:5443`). Remember the 1.6 pitfalls: a
    /// top-level `ca =` is rejected; `server` plus `[host."X"] ca=` falls back to `server`
    /// without the CA. Prefer [`ContainerdConfig::ssl_cert_file`] for trust.
    pub fn write_hosts_toml(&self, host: &str, toml: &str) -> io::Result<PathBuf> {
        if host.is_empty() || host.contains('/') || host.starts_with('.') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a registry host: {host:?}")));
        }
        let dir = self.certs_d.join(host);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("hosts.toml");
        std::fs::write(&path, toml)?;
        Ok(path)
    }

    /// CRI `PullImage` through this daemon (see [`Cri::pull_image`]).
    pub async fn pull_image(&self, image: &str, auth: Option<&Auth>) -> Result<crate::ImageRef, PullError> {
        self.cri.pull_image(image, auth).await
    }

    /// `ctr images pull --platform PLATFORM` against this daemon, launched like the daemon (same
    /// network namespace and resolver) with the same `SSL_CERT_FILE`.
    pub async fn ctr_pull(
        &self,
        image: &str,
        platform: Option<&str>,
        auth: Option<&Auth>,
    ) -> Result<CtrPullOutput, PullError> {
        let opts = CtrOptions {
            launcher: self.launcher.clone(),
            ssl_cert_file: self.ssl_cert_file.clone(),
            ..CtrOptions::default()
        };
        ctr_pull(&self.socket, image, platform, auth, &opts).await
    }

    /// Imports an OCI image layout archive (see [`crate::BuiltImage::oci_archive`]) into the CRI
    /// namespace and pins it, so the kubelet's image garbage collection never removes it: how
    /// the pause image reaches a node that can pull nothing.
    pub async fn import_image(&self, archive: &[u8], name: &str) -> Result<(), DaemonError> {
        let file = self.dir.path().join("import.tar");
        std::fs::write(&file, archive).map_err(|e| prepare(&file, e))?;
        let ctr = self.ctr_binary();
        let address = self.socket.display().to_string();
        let file_arg = file.display().to_string();
        let pinned = "io.cri-containerd.pinned=pinned";
        for args in [
            vec!["--address", &address, "-n", "k8s.io", "images", "import", "--all-platforms", &file_arg],
            vec!["--address", &address, "-n", "k8s.io", "images", "label", name, pinned],
        ] {
            let out = tokio::process::Command::new(&ctr)
                .args(&args)
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| DaemonError::Spawn { what: "ctr", program: ctr.display().to_string(), source: e })?;
            if !out.status.success() {
                return Err(DaemonError::Prepare {
                    what: "ctr images import",
                    path: file.clone(),
                    source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
                });
            }
        }
        let _ = std::fs::remove_file(&file);
        Ok(())
    }

    /// The `ctr` built with this containerd.
    fn ctr_binary(&self) -> PathBuf {
        CtrOptions::default().binary
    }

    /// Removes every pod sandbox through CRI (containers, shims and pod network namespaces go
    /// with them), as deleting a node does. Call before [`Containerd::stop`].
    pub async fn remove_all_pods(&self) -> Result<usize, crate::CriError> {
        self.cri.remove_all_pods().await
    }

    /// Stops the daemon (SIGTERM to its process group, SIGKILL after 2 s), stops any shim it
    /// left (shims run in process groups of their own) and removes its temp dir. Blocking;
    /// dropping does the same.
    pub fn stop(mut self) -> Result<Stopped, DaemonError> {
        let stopped = self.process.stop()?;
        self.cleanup();
        Ok(stopped)
    }

    fn cleanup(&self) {
        for pid in shims_of(&self.socket) {
            crate::process::signal_group(pid, libc::SIGKILL);
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        crate::process::unmount_below(self.dir.path());
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Err(e) = self.process.stop() {
            tracing::warn!(error = %e, "stopping containerd failed");
        }
        self.cleanup();
    }
}

/// The shims (`containerd-shim-runc-v2 ... -address SOCKET`) serving the daemon at `socket`.
pub fn shims_of(socket: &Path) -> Vec<u32> {
    let want = socket.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![] };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"))
                    && args.windows(2).any(|w| w[0] == b"-address" && w[1] == want)
            })
        })
        .collect()
}

fn prepare(path: &Path, source: io::Error) -> DaemonError {
    DaemonError::Prepare { what: "containerd", path: path.to_path_buf(), source }
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn toml_path(p: &Path) -> String {
    toml_str(&p.to_string_lossy())
}

/// The version 3 config (containerd 2.x): everything below `dir`, nothing listening on TCP, no
/// host paths; pod network namespaces under the state dir (nothing in `/run/netns`); runc from
/// `runc` with the cgroupfs driver; CNI from [`ContainerdConfig::cni_bin_dir`] and `dir/cni`.
fn render_config(c: &ContainerdConfig, dir: &Path) -> String {
    let p = |name: &str| toml_path(&dir.join(name));
    format!(
        r#"version = 3
root = {root}
state = {state}
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri"]

[grpc]
  address = {sock}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = {opt}

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = {snapshotter}
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = {sandbox}
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = {certs}

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # Containers never get a lower OOM score than containerd's own: this machine's root may not
  # lower it (no CAP_SYS_RESOURCE), and the kubelet asks -998 for sandboxes.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = {runc}
        Root = {runc_root}
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [{cni_bin}]
    conf_dir = {cni}
{extra}
"#,
        root = p("root"),
        state = p("state"),
        sock = p("containerd.sock"),
        ttrpc = p("containerd.sock.ttrpc"),
        opt = p("opt"),
        sandbox = toml_str(&c.sandbox_image),
        snapshotter = toml_str(&c.snapshotter),
        runc = toml_path(&c.runc),
        runc_root = p("runc"),
        cni_bin = toml_path(&c.cni_bin_dir),
        cni = p("cni"),
        certs = p("certs.d"),
        extra = c.extra_toml,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_everything_below_the_dir() {
        let c = ContainerdConfig::default();
        let t = render_config(&c, Path::new("/tmp/ppctd-x"));
        assert!(t.contains(r#"address = "/tmp/ppctd-x/containerd.sock""#));
        assert!(t.contains(r#"config_path = "/tmp/ppctd-x/certs.d""#));
        assert!(t.contains(r#"sandbox = "pullproof.invalid/pause:local""#));
        assert!(t.contains("netns_mounts_under_state_dir = true"));
        assert!(t.starts_with("version = 3"));
        assert!(t.contains(r#"root = "/tmp/ppctd-x/root""#));
        assert!(t.contains(r#"state = "/tmp/ppctd-x/state""#));
    }
}
