//! Child processes that never outlive their owner.
//!
//! Every daemon this crate starts runs in its own process group, writes stdout and stderr to a
//! log file, and is stopped (SIGTERM to the whole group, SIGKILL after a grace period) when its
//! guard is dropped: on the normal path, on an early `?` return and while unwinding from a panic.
//!
//! [`Launcher`] is the hook through which another crate decides *where* a process runs (a
//! network namespace, a private mount namespace with its own `/etc/resolv.conf`) without this
//! crate knowing anything about those namespaces.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stopped daemon gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// A pre-spawn customiser: runs on the fully built [`Command`] just before it is spawned.
pub type Customize = Arc<dyn Fn(&mut Command) + Send + Sync>;

/// Decides how a program is launched: an argv prefix (`wrapper`) and/or a pre-spawn customiser.
///
/// The default launches the program directly. The wrapper's last element must hand over to the
/// program that follows it (as `nsenter`, `unshare` and `sh -c '... exec "$@"' sh` do), so the
/// program keeps the child's PID, stays in the child's process group and is stopped with it.
///
/// ```
/// use pullproof_host_runtime::Launcher;
/// // containerd in the node's network namespace, with the node's own resolver configuration:
/// let launcher = Launcher::netns_with_resolv("/run/netns/node", "/tmp/node/resolv.conf");
/// let cmd = launcher.command("containerd", ["--config", "/tmp/c.toml"]);
/// assert_eq!(cmd.get_program(), "nsenter");
/// ```
#[derive(Clone, Default)]
pub struct Launcher {
    /// Argv prefix: `wrapper[0]` is executed with `wrapper[1..]`, then the program and its args.
    pub wrapper: Vec<OsString>,
    /// Called on the built command just before spawning (extra env, `pre_exec`, ...).
    pub customize: Option<Customize>,
}

impl fmt::Debug for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launcher")
            .field("wrapper", &self.wrapper)
            .field("customize", &self.customize.as_ref().map(|_| "Fn(&mut Command)"))
            .finish()
    }
}

impl Launcher {
    /// Launches programs directly, in the caller's namespaces.
    pub fn direct() -> Self {
        Self::default()
    }

    /// Launches programs through an arbitrary argv prefix.
    pub fn wrapped<I, S>(wrapper: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self { wrapper: wrapper.into_iter().map(Into::into).collect(), customize: None }
    }

    /// Launches programs inside the network namespace at `netns` (e.g. `/run/netns/node`), via
    /// `nsenter --net=NETNS`. The mount namespace (and so `/sys` and the cgroups) stays the host's.
    pub fn in_netns(netns: impl AsRef<Path>) -> Self {
        let mut arg = OsString::from("--net=");
        arg.push(netns.as_ref());
        Self::wrapped([OsString::from("nsenter"), arg])
    }

    /// Adds a private mount namespace (`unshare --mount --propagation private`) in which each
    /// `(source, target)` pair is bind-mounted before the program is exec'd. The mounts are
    /// invisible to the host and vanish with the process.
    ///
    /// Paths travel as positional parameters of `sh -c`, never spliced into the script, so any
    /// path is safe.
    pub fn with_private_binds<P, Q>(mut self, binds: impl IntoIterator<Item = (P, Q)>) -> Self
    where
        P: AsRef<Path>,
        Q: AsRef<Path>,
    {
        let mut script = String::from("set -e; ");
        let mut params: Vec<OsString> = Vec::new();
        for (source, target) in binds {
            let n = params.len();
            script.push_str(&format!("mount --bind \"${}\" \"${}\"; ", n + 1, n + 2));
            params.push(source.as_ref().into());
            params.push(target.as_ref().into());
        }
        script.push_str(&format!("shift {}; exec \"$@\"", params.len()));
        self.wrapper
            .extend(["unshare", "--mount", "--propagation", "private", "sh", "-c", &script, "sh"].map(OsString::from));
        self.wrapper.extend(params);
        self
    }

    /// The node setup of the host backend: run inside `netns` with `resolv_conf` bind-mounted on
    /// `/etc/resolv.conf` in a private mount namespace, i.e.
    /// `nsenter --net=NETNS unshare --mount --propagation private sh -c 'mount --bind "$1" "$2"; shift 2; exec "$@"' sh RESOLV /etc/resolv.conf PROGRAM ARGS...`.
    pub fn netns_with_resolv(netns: impl AsRef<Path>, resolv_conf: impl AsRef<Path>) -> Self {
        Self::in_netns(netns).with_private_binds([(resolv_conf.as_ref(), Path::new("/etc/resolv.conf"))])
    }

    /// Sets the pre-spawn customiser.
    pub fn customize(mut self, f: impl Fn(&mut Command) + Send + Sync + 'static) -> Self {
        self.customize = Some(Arc::new(f));
        self
    }

    /// Builds the command for `program args...` through this launcher. The customiser is *not*
    /// applied yet: [`Launcher::finish`] does that after the caller has set env and stdio.
    pub fn command<I, S>(&self, program: impl Into<OsString>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let program = program.into();
        let args = args.into_iter().map(Into::into);
        match self.wrapper.split_first() {
            None => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(program).args(args);
                cmd
            }
        }
    }

    /// Applies the customiser (if any); call it last, just before spawning.
    pub fn finish(&self, cmd: &mut Command) {
        if let Some(f) = &self.customize {
            f(cmd);
        }
    }
}

/// Environment variables that would send a daemon's traffic to a proxy instead of to the
/// addresses the scenario set up: removed from every child.
pub(crate) const PROXY_VARS: &[&str] =
    &["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy"];

/// Why a daemon could not be started, became ready, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A file the daemon needs (config, directories, log) could not be prepared.
    #[error("{what}: could not prepare {path}: {source}")]
    Prepare {
        /// Which daemon.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The program could not be spawned (missing binary, bad wrapper).
    #[error("{what}: could not spawn `{program}`: {source}")]
    Spawn {
        /// Which daemon.
        what: &'static str,
        /// The program executed first (the wrapper's first element if any).
        program: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The process exited before it became ready.
    #[error("{what} exited during start-up ({status}); log {log}, last lines:\n{tail}")]
    ExitedEarly {
        /// Which daemon.
        what: &'static str,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log (stdout and stderr).
        tail: String,
    },
    /// The process kept running but never answered on its socket.
    #[error(transparent)]
    NotReady(Box<NotReady>),
    /// Signalling or reaping the process failed.
    #[error("{what}: could not stop pid {pid}: {source}")]
    Stop {
        /// Which daemon.
        what: &'static str,
        /// The daemon's pid (also its process group id).
        pid: u32,
        /// The OS error.
        source: io::Error,
    },
}

/// A daemon that kept running but never answered on its socket.
#[derive(Debug, thiserror::Error)]
#[error("{what} not ready after {waited:?} on {socket}: {last_error}; log {log}, last lines:\n{tail}", socket = socket.display(), log = log.display())]
pub struct NotReady {
    /// Which daemon.
    pub what: &'static str,
    /// How long readiness was polled.
    pub waited: Duration,
    /// The socket polled.
    pub socket: PathBuf,
    /// The last readiness probe's error.
    pub last_error: String,
    /// Its log file.
    pub log: PathBuf,
    /// The last lines of its log.
    pub tail: String,
}

/// How a stopped daemon ended.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Its exit status (a signal if it needed SIGKILL or ignored SIGTERM).
    pub status: ExitStatus,
    /// From SIGTERM to reaped.
    pub took: Duration,
    /// Whether SIGKILL was needed.
    pub killed: bool,
}

/// A spawned process in its own process group, with its output in a log file. Dropping it stops
/// the whole group (SIGTERM, then SIGKILL after [`STOP_GRACE`]).
#[derive(Debug)]
pub struct ProcessGuard {
    what: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl ProcessGuard {
    /// Spawns `cmd` in a new process group with stdin closed and stdout+stderr appended to `log`.
    pub fn spawn(what: &'static str, launcher: &Launcher, mut cmd: Command, log: &Path) -> Result<Self, DaemonError> {
        let prepare = |source| DaemonError::Prepare { what, path: log.to_path_buf(), source };
        let out = File::options().create(true).append(true).open(log).map_err(prepare)?;
        let err = out.try_clone().map_err(prepare)?;
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        launcher.finish(&mut cmd);
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = cmd.spawn().map_err(|source| DaemonError::Spawn { what, program, source })?;
        tracing::debug!(what, pid = child.id(), log = %log.display(), "spawned");
        Ok(Self { what, child: Some(child), log: log.to_path_buf() })
    }

    /// The process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log file holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// `Some(status)` if the process has exited (without reaping it: the pid and process group
    /// id stay reserved until [`ProcessGuard::stop`] or drop).
    pub fn exited(&self) -> Option<ExitStatus> {
        let pid = self.child.as_ref()?.id();
        peek_exit(pid)
    }

    /// Fails with [`DaemonError::ExitedEarly`] if the process already exited.
    pub(crate) fn check_alive(&self) -> Result<(), DaemonError> {
        match self.exited() {
            None => Ok(()),
            Some(status) => Err(DaemonError::ExitedEarly {
                what: self.what,
                status: status.to_string(),
                log: self.log.clone(),
                tail: self.log_tail(20),
            }),
        }
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace`. Blocks for at most
    /// `grace` plus the time to reap. Idempotent (a second call returns the same error-free
    /// result with zero duration).
    pub fn stop_with(&mut self, grace: Duration) -> Result<Stopped, DaemonError> {
        let Some(mut child) = self.child.take() else {
            return Ok(Stopped {
                status: std::os::unix::process::ExitStatusExt::from_raw(0),
                took: Duration::ZERO,
                killed: false,
            });
        };
        let pid = child.id();
        let start = Instant::now();
        signal_group(pid, libc::SIGTERM);
        let mut killed = false;
        loop {
            if peek_exit(pid).is_some() {
                break;
            }
            if start.elapsed() >= grace {
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whatever else is left in the group (the leader is at most a zombie here, so its pid
        // and the group id cannot have been reused) gets SIGKILL.
        signal_group(pid, libc::SIGKILL);
        let status = child.wait().map_err(|source| DaemonError::Stop { what: self.what, pid, source })?;
        // SIGKILL is delivered asynchronously: the leader's exit says nothing about its
        // descendants. Return only once the whole group is gone, so callers (and leak checks)
        // never see a process that is still dying.
        let reaped = wait_group_gone(pid, GROUP_GONE_WAIT);
        if !reaped {
            tracing::warn!(what = self.what, pid, left = ?processes_in_group(pid), "processes outlived SIGKILL");
        }
        let took = start.elapsed();
        tracing::debug!(what = self.what, pid, ?took, killed, %status, "stopped");
        Ok(Stopped { status, took, killed })
    }

    /// [`ProcessGuard::stop_with`] with [`STOP_GRACE`].
    pub fn stop(&mut self) -> Result<Stopped, DaemonError> {
        self.stop_with(STOP_GRACE)
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if self.child.is_some()
            && let Err(e) = self.stop()
        {
            tracing::warn!(error = %e, "stopping on drop failed");
        }
    }
}

/// How long [`ProcessGuard::stop_with`] waits for a killed group's members to disappear.
const GROUP_GONE_WAIT: Duration = Duration::from_secs(5);

/// Polls `/proc` until no live process is left in group `pgid`, or `within` has passed;
/// true when the group is gone.
fn wait_group_gone(pgid: u32, within: Duration) -> bool {
    let start = Instant::now();
    loop {
        if processes_in_group(pgid).is_empty() {
            return true;
        }
        if start.elapsed() >= within {
            return false;
        }
        // Stragglers get the signal again: a member forked between the first kill and now.
        signal_group(pgid, libc::SIGKILL);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal` to every process in group `pgid`; "no such process" is not an error.
pub(crate) fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // never signal our own group (0) or everything (-1)
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Exit status of child `pid` if it has exited, leaving it unreaped (waitid with WNOWAIT).
fn peek_exit(pid: u32) -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let id = libc::id_t::from(pid);
    // SAFETY: siginfo_t is plain data; waitid fills it in and we read it only on success.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    // SAFETY: on success with WEXITED, si_pid/si_status are the valid union members.
    let (si_pid, si_status) = unsafe { (info.si_pid(), info.si_status()) };
    if rc != 0 || si_pid == 0 {
        return None;
    }
    let raw = if info.si_code == libc::CLD_EXITED { (si_status & 0xff) << 8 } else { si_status & 0x7f };
    Some(ExitStatus::from_raw(raw))
}

/// Pids of the live (non-zombie) processes in process group `pgid`, read from `/proc`. Tests use
/// it to prove that nothing was left behind.
pub fn processes_in_group(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && !matches!(fields[0], "Z" | "X" | "x") && fields[2].parse::<u32>().ok() == Some(pgid) {
            found.push(pid);
        }
    }
    found
}

/// The last `lines` lines of a (log) file; at most the last 64 KiB are read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    const MAX: u64 = 64 * 1024;
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX {
        let _ = f.seek(SeekFrom::Start(len - MAX));
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `probe` every `every` until it succeeds, the guarded process exits, or `timeout` passes.
/// `socket` is probed only once it exists (give a path that always exists to probe at once).
pub async fn wait_ready<F, Fut, T>(
    guard: &ProcessGuard,
    socket: &Path,
    timeout: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T, DaemonError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut last_error = String::from("socket not created yet");
    loop {
        guard.check_alive()?;
        if socket.exists() {
            match tokio::time::timeout(Duration::from_secs(1), probe()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = "probe timed out after 1s".into(),
            }
        }
        if start.elapsed() >= timeout {
            guard.check_alive()?;
            return Err(DaemonError::NotReady(Box::new(NotReady {
                what: guard.what,
                waited: start.elapsed(),
                socket: socket.to_path_buf(),
                last_error,
                log: guard.log.clone(),
                tail: guard.log_tail(20),
            })));
        }
        tokio::time::sleep(every).await;
    }
}

/// Removes (lazily detaches) every mount at or below `dir`, deepest first, so that the directory
/// can be deleted even if a daemon left a snapshot mounted.
pub fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut targets: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect();
    targets.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for target in targets {
        let Ok(c) = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: c is a valid NUL-terminated path.
        let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            tracing::warn!(target = %target.display(), error = %io::Error::last_os_error(), "umount failed");
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount_path(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if b[i] == b'\\' && octal {
            let v = u32::from(b[i + 1] - b'0') * 64 + u32::from(b[i + 2] - b'0') * 8 + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_launcher_runs_the_program() {
        let cmd = Launcher::direct().command("containerd", ["--config", "c.toml"]);
        assert_eq!(cmd.get_program(), "containerd");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["--config", "c.toml"]);
    }

    #[test]
    fn netns_launcher_passes_paths_as_parameters() {
        let l = Launcher::netns_with_resolv("/run/netns/node a", "/tmp/it's/resolv.conf");
        let cmd = l.command("containerd", ["--config", "c.toml"]);
        assert_eq!(cmd.get_program(), "nsenter");
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "--net=/run/netns/node a",
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "set -e; mount --bind \"$1\" \"$2\"; shift 2; exec \"$@\"",
                "sh",
                "/tmp/it's/resolv.conf",
                "/etc/resolv.conf",
                "containerd",
                "--config",
                "c.toml",
            ]
        );
    }

    #[test]
    fn log_tail_returns_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&p, 2), "c\nd");
        assert_eq!(log_tail(&p, 10), "a\nb\nc\nd");
        assert_eq!(log_tail(&dir.path().join("missing"), 3), "");
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b\134c"), PathBuf::from("/tmp/a b\\c"));
    }

    #[test]
    fn guard_kills_the_whole_group_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // A shell that ignores SIGTERM and has a grandchild: only SIGKILL of the group ends both.
        let cmd = Launcher::direct().command("sh", ["-c", "trap '' TERM; sleep 30 & sleep 30"]);
        let mut guard = ProcessGuard::spawn("test", &Launcher::direct(), cmd, &log).unwrap();
        let pgid = guard.pid();
        let deadline = Instant::now() + Duration::from_secs(5);
        while processes_in_group(pgid).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(processes_in_group(pgid).len() >= 2);
        let stopped = guard.stop_with(Duration::from_millis(200)).unwrap();
        assert!(stopped.killed);
        assert!(processes_in_group(pgid).is_empty(), "group {pgid} left behind");
        drop(guard);
    }
}
