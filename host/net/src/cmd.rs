//! Running the few external tools this crate needs (`ip`, `nft`) with errors that name the command.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};

use crate::{Error, Result};

/// Renders a command line for error messages.
pub(crate) fn describe(cmd: &Command, stdin: Option<&str>) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if let Some(input) = stdin {
        s.push_str(" <<EOF\n");
        s.push_str(input.trim_end());
        s.push_str("\nEOF");
    }
    s
}

fn status_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// Runs `cmd` to completion, feeding `stdin` if given, and returns its standard output.
/// A non-zero exit becomes [`Error::Command`] with the command line and its stderr.
pub(crate) fn run(mut cmd: Command, stdin: Option<&str>) -> Result<String> {
    let command = describe(&cmd, stdin);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    tracing::trace!(%command, "running");
    let mut child = cmd.spawn().map_err(|source| Error::Spawn { command: command.clone(), source })?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin was piped");
        // A write error (EPIPE) means the tool exited early; its status and stderr tell why.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| Error::Spawn { command: command.clone(), source })?;
    if !out.status.success() {
        return Err(Error::Command {
            command,
            status: status_text(out.status),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The path of a system tool: found on `PATH`, else in the sbin/bin directories (a root shell's `PATH`
/// may lack `/usr/sbin`, where `ip` and `nft` live on Debian).
pub(crate) fn tool(name: &str) -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Into::into))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| name.into())
}

/// `ip ARGS...` in the root namespace (only ever used for `ip netns add/del` and `ip -n NS ...`).
pub(crate) fn ip(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = Command::new(tool("ip"));
    cmd.args(args);
    run(cmd, stdin)
}
