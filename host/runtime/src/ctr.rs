//! Client-side pulls with `ctr images pull`, for platforms the daemon's CRI does not pull
//! (a Windows node pool: `--platform windows/amd64`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::cri::{Auth, PullError};
use crate::process::{Launcher, PROXY_VARS, signal_group};

/// How `ctr` is run.
#[derive(Debug, Clone)]
pub struct CtrOptions {
    /// The ctr binary.
    pub binary: PathBuf,
    /// containerd namespace (`k8s.io`, where CRI images live).
    pub namespace: String,
    /// `SSL_CERT_FILE` for ctr (it resolves and fetches in its own process).
    pub ssl_cert_file: Option<PathBuf>,
    /// How ctr is launched (e.g. inside the node's network namespace).
    pub launcher: Launcher,
    /// ctr is killed (its whole process group) after this long.
    pub timeout: Duration,
}

impl Default for CtrOptions {
    fn default() -> Self {
        Self {
            binary: crate::components::Components::pinned().containerd("ctr"),
            namespace: "k8s.io".into(),
            ssl_cert_file: None,
            launcher: Launcher::direct(),
            timeout: Duration::from_secs(120),
        }
    }
}

/// A successful `ctr images pull`.
#[derive(Debug, Clone)]
pub struct CtrPullOutput {
    /// Wall time of the ctr process.
    pub elapsed: Duration,
    /// ctr's stdout (progress lines).
    pub stdout: String,
}

/// Runs `ctr --address SOCKET -n NAMESPACE images pull [--platform P] [--user U:P] IMAGE`.
///
/// On a non-zero exit the error is [`PullError::Ctr`]: its message is ctr's own error line
/// (`ctr: ...`) untouched, with all of stderr alongside. The password travels only on ctr's argv (ctr has no other
/// non-interactive way); it is never logged and never part of an error.
pub async fn ctr_pull(
    socket: &Path,
    image: &str,
    platform: Option<&str>,
    auth: Option<&Auth>,
    opts: &CtrOptions,
) -> Result<CtrPullOutput, PullError> {
    let mut args: Vec<String> = vec![
        "--address".into(),
        socket.to_string_lossy().into_owned(),
        "-n".into(),
        opts.namespace.clone(),
        "images".into(),
        "pull".into(),
    ];
    if let Some(p) = platform {
        args.extend(["--platform".into(), p.to_string()]);
    }
    if let Some(a) = auth {
        args.extend(["--user".into(), format!("{}:{}", a.username, a.password)]);
    }
    args.push(image.to_string());
    tracing::debug!(image, ?platform, with_auth = auth.is_some(), "ctr images pull");

    let unreachable =
        |detail: String| PullError::Unreachable { image: image.to_string(), socket: socket.to_path_buf(), detail };
    let mut cmd = opts.launcher.command(opts.binary.as_os_str(), &args);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    if let Some(bundle) = &opts.ssl_cert_file {
        cmd.env("SSL_CERT_FILE", bundle);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    opts.launcher.finish(&mut cmd);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);

    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| unreachable(format!("could not spawn `{program}`: {e}")))?;
    let mut group = GroupKill(child.id());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let run = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        let ((), (), status) = tokio::join!(read_out, read_err, child.wait());
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(opts.timeout, run).await {
        Ok(r) => r,
        Err(_) => {
            drop(group); // kills the group; kill_on_drop reaps the leader
            return Err(unreachable(format!("ctr did not finish within {:?} and was killed", opts.timeout)));
        }
    };
    let elapsed = start.elapsed();
    // The leader is reaped: its pid may be reused, so the group must not be signalled any more.
    group.0 = None;
    let status = status.map_err(|e| unreachable(format!("waiting for ctr: {e}")))?;
    let stdout = String::from_utf8_lossy(&out).into_owned();
    if status.success() {
        Ok(CtrPullOutput { elapsed, stdout })
    } else {
        let stderr = String::from_utf8_lossy(&err).into_owned();
        Err(PullError::Ctr {
            image: image.to_string(),
            status: status.to_string(),
            message: error_line(&stderr),
            stderr,
        })
    }
}

/// ctr's error line (`ctr: ...`, the last one), else all of stderr, trimmed.
fn error_line(stderr: &str) -> String {
    stderr.lines().rev().find(|l| l.starts_with("ctr: ")).unwrap_or(stderr).trim().to_string()
}

/// Kills the process group on drop.
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            signal_group(pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_line_is_ctrs_last_word() {
        let stderr = "time=\"2026-11-22T18:14:53Z\" level=info msg=\"trying next host - response was http.StatusNotFound\" host=\"r:1\"\nctr: failed to resolve reference \"r:1/a:b\": r:1/a:b: not found\n";
        assert_eq!(error_line(stderr), "ctr: failed to resolve reference \"r:1/a:b\": r:1/a:b: not found");
        assert_eq!(error_line("  something else\n"), "something else");
    }
}
