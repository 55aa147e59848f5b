//! One named network namespace (`/run/netns/NAME`, as `ip netns` makes them), and ways to act inside it
//! from a process that stays in the root namespace.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Error, Result, cmd};

/// Every namespace this crate creates has a name starting with this, so [`sweep`] can find leftovers.
pub const NAME_PREFIX: &str = "pp-";

/// Where `ip netns` keeps its namespace files.
pub const NETNS_DIR: &str = "/run/netns";

/// Where this crate keeps per-namespace files (e.g. a node's `resolv.conf`): `STATE_DIR/NAME/`.
pub const STATE_DIR: &str = "/run/pullproof-net";

/// Checks a namespace name or sweep prefix: `pp-` then only `[a-z0-9-]`, at most 64 bytes.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = name.starts_with(NAME_PREFIX)
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(Error::InvalidName(name.to_owned())) }
}

/// The conventional name of a namespace: `pp-<runid>-<role>`.
pub fn ns_name(runid: &str, role: &str) -> String {
    format!("{NAME_PREFIX}{runid}-{role}")
}

/// A short random hex run id (8 hex digits) for [`ns_name`].
pub fn new_runid() -> String {
    let mut buf = [0u8; 4];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // Fall back to time and pid: uniqueness, not secrecy, is what matters here.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let v = t.subsec_nanos() ^ (std::process::id() << 8) ^ t.as_secs() as u32;
        buf = v.to_le_bytes();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A named network namespace created with `ip netns add`. Dropping it kills every process still inside
/// it, deletes the namespace (`ip netns del`) and removes its state directory; errors on drop are logged.
/// Use [`NetNs::delete`] to see them instead.
///
/// Sockets made inside the namespace ([`NetNs::bind_tcp`] and friends) keep the kernel's namespace alive
/// until they are closed, even after it is deleted; they can never reach the root namespace.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    path: PathBuf,
    state_dir: PathBuf,
    deleted: bool,
}

impl NetNs {
    /// Creates the namespace `name` (which must start with `pp-`) and brings its loopback up.
    /// IPv6 is disabled inside it (the VNets are IPv4-only, and this keeps veths quiet).
    pub fn create(name: &str) -> Result<NetNs> {
        check_name(name)?;
        cmd::ip(&["netns", "add", name], None)?;
        let ns = NetNs {
            name: name.to_owned(),
            path: Path::new(NETNS_DIR).join(name),
            state_dir: Path::new(STATE_DIR).join(name),
            deleted: false,
        };
        // From here on, an error drops `ns`, which deletes the namespace again.
        ns.run(|| -> std::io::Result<()> {
            for key in ["net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"] {
                write_sysctl_here(key, "1")?;
            }
            Ok(())
        })?
        .map_err(|e| Error::ns(name, "disable IPv6", e))?;
        cmd::ip(&["-n", name, "link", "set", "lo", "up"], None)?;
        tracing::debug!(ns = name, "network namespace created");
        Ok(ns)
    }

    /// The namespace's name (`pp-<runid>-<role>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, `/run/netns/NAME` (what `nsenter --net=` takes).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A directory for files belonging to this namespace (created on demand, removed on drop).
    pub fn state_dir(&self) -> Result<&Path> {
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| Error::io(format!("create {}", self.state_dir.display()), e))?;
        Ok(&self.state_dir)
    }

    fn open(&self) -> Result<File> {
        File::open(&self.path).map_err(|e| Error::ns(&self.name, format!("open {}", self.path.display()), e))
    }

    /// Runs `f` on a short-lived dedicated thread that has joined this namespace (`setns(CLONE_NEWNET)`),
    /// and returns its result. Sockets `f` creates belong to the namespace for their whole life, whatever
    /// thread uses them later. A panic in `f` is resumed on the calling thread.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let file = self.open()?;
        let name = &self.name;
        std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .name("netns".into())
                .spawn_scoped(s, move || -> Result<T> {
                    // SAFETY: plain syscall on a valid fd; it only changes this (new, private) thread.
                    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(Error::ns(name, "setns", std::io::Error::last_os_error()));
                    }
                    drop(file);
                    Ok(f())
                })
                .map_err(|e| Error::ns(name, "spawn thread", e))?;
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Binds a TCP listener (blocking mode) inside this namespace. For tokio, call
    /// `set_nonblocking(true)` and `tokio::net::TcpListener::from_std`, or use [`NetNs::tokio_tcp`].
    pub fn bind_tcp(&self, addr: SocketAddr) -> Result<TcpListener> {
        self.run(|| TcpListener::bind(addr))?.map_err(|e| Error::ns(&self.name, format!("bind tcp {addr}"), e))
    }

    /// Binds a UDP socket (blocking mode) inside this namespace.
    pub fn bind_udp(&self, addr: SocketAddr) -> Result<UdpSocket> {
        self.run(|| UdpSocket::bind(addr))?.map_err(|e| Error::ns(&self.name, format!("bind udp {addr}"), e))
    }

    /// Binds a TCP listener inside this namespace and hands it to tokio (call within a runtime).
    pub fn tokio_tcp(&self, addr: SocketAddr) -> Result<tokio::net::TcpListener> {
        let l = self.bind_tcp(addr)?;
        l.set_nonblocking(true).map_err(|e| Error::ns(&self.name, "set_nonblocking", e))?;
        tokio::net::TcpListener::from_std(l).map_err(|e| Error::ns(&self.name, "register with tokio", e))
    }

    /// Binds a UDP socket inside this namespace and hands it to tokio (call within a runtime).
    pub fn tokio_udp(&self, addr: SocketAddr) -> Result<tokio::net::UdpSocket> {
        let s = self.bind_udp(addr)?;
        s.set_nonblocking(true).map_err(|e| Error::ns(&self.name, "set_nonblocking", e))?;
        tokio::net::UdpSocket::from_std(s).map_err(|e| Error::ns(&self.name, "register with tokio", e))
    }

    /// Connects from inside this namespace (a probe: blocks the caller up to `timeout`). The error keeps
    /// the kernel's verdict: `TimedOut` (dropped), `ConnectionRefused` (reset), `NetworkUnreachable`, ...
    pub fn connect_tcp(&self, addr: SocketAddr, timeout: Duration) -> Result<TcpStream, std::io::Error> {
        match self.run(|| TcpStream::connect_timeout(&addr, timeout)) {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// A command that runs `program` inside this namespace (the child calls `setns` before `exec`).
    /// Unlike `ip netns exec`, the child keeps the real `/sys` and its mounts, and `/etc/netns` files
    /// are not bind-mounted; see [`NetNs::command_with_resolv_conf`] for a private resolver.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        let path = cstring(self.path.as_os_str());
        // SAFETY: the closure only makes async-signal-safe syscalls on pre-built C strings.
        unsafe {
            c.pre_exec(move || enter_netns(&path));
        }
        c
    }

    /// Like [`NetNs::command`], and the child also gets a private mount namespace (propagation private,
    /// so nothing leaks to the host) in which `resolv_conf` is bind-mounted over `/etc/resolv.conf`:
    /// the child resolves names with its own resolver while `/sys` stays the real one.
    pub fn command_with_resolv_conf(&self, program: impl AsRef<OsStr>, resolv_conf: &Path) -> Command {
        let mut c = Command::new(program);
        let path = cstring(self.path.as_os_str());
        let src = cstring(resolv_conf.as_os_str());
        // SAFETY: the closure only makes async-signal-safe syscalls on pre-built C strings.
        unsafe {
            c.pre_exec(move || {
                enter_netns(&path)?;
                private_resolv_conf(&src)
            });
        }
        c
    }

    /// Writes `value` to `/proc/sys/<key>` inside this namespace (e.g. `net/ipv4/ip_forward`).
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run(|| write_sysctl_here(key, value))?
            .map_err(|e| Error::ns(&self.name, format!("sysctl {key}={value}"), e))
    }

    /// Reads `/proc/sys/<key>` inside this namespace.
    pub fn sysctl(&self, key: &str) -> Result<String> {
        self.run(|| std::fs::read_to_string(Path::new("/proc/sys").join(key)))?
            .map(|s| s.trim().to_owned())
            .map_err(|e| Error::ns(&self.name, format!("read sysctl {key}"), e))
    }

    /// Runs `ip -n NAME ARGS...` and returns its output.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        cmd::ip(&all, None)
    }

    /// Runs an `ip -batch` script (one `ip` command per line, without the leading `ip`) in this namespace.
    pub fn ip_batch(&self, script: &str) -> Result<()> {
        cmd::ip(&["-n", &self.name, "-batch", "-"], Some(script)).map(drop)
    }

    /// Loads an nftables script (`nft -f -`) in this namespace: one atomic transaction.
    pub fn nft(&self, script: &str) -> Result<()> {
        let mut c = self.command(cmd::tool("nft"));
        c.args(["-f", "-"]);
        cmd::run(c, Some(script)).map(drop)
    }

    /// Runs `nft ARGS...` in this namespace and returns its output (e.g. `list ruleset`).
    pub fn nft_args(&self, args: &[&str]) -> Result<String> {
        let mut c = self.command(cmd::tool("nft"));
        c.args(args);
        cmd::run(c, None)
    }

    /// The ids of processes whose network namespace is this one (never this process itself).
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.path)
    }

    /// Kills every process in the namespace, deletes it and its state directory, reporting errors.
    pub fn delete(mut self) -> Result<()> {
        self.deleted = true;
        delete_ns(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if !self.deleted
            && let Err(e) = delete_ns(&self.name)
        {
            tracing::warn!(ns = %self.name, error = %e, "could not delete network namespace");
        }
    }
}

fn cstring(s: &OsStr) -> CString {
    // Paths built by this crate never contain NUL; a caller's path with NUL fails at exec time instead.
    CString::new(s.as_bytes()).unwrap_or_default()
}

/// In a forked child: join the namespace at `path`. Async-signal-safe.
fn enter_netns(path: &CString) -> std::io::Result<()> {
    // SAFETY: raw syscalls on a valid C string and the fd they return.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let rc = libc::setns(fd, libc::CLONE_NEWNET);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// In a forked child: new mount namespace, everything private, `src` bound over /etc/resolv.conf.
fn private_resolv_conf(src: &CString) -> std::io::Result<()> {
    const ROOT: &std::ffi::CStr = c"/";
    const TARGET: &std::ffi::CStr = c"/etc/resolv.conf";
    // SAFETY: raw syscalls with valid C strings and null optional arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        if libc::mount(std::ptr::null(), ROOT.as_ptr(), std::ptr::null(), flags, std::ptr::null()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::mount(src.as_ptr(), TARGET.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes a sysctl for the calling thread's network namespace.
fn write_sysctl_here(key: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(Path::new("/proc/sys").join(key), value)
}

/// Processes (other than ourselves) whose network namespace is the one bound at `path`.
pub(crate) fn pids_in(path: &Path) -> Vec<i32> {
    let Ok(target) = std::fs::metadata(path) else { return Vec::new() };
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
        .collect()
}

/// SIGKILLs every process in the namespace at `path` and waits (up to 2 s) until they are gone.
fn kill_all_in(name: &str, path: &Path) {
    let pids = pids_in(path);
    if pids.is_empty() {
        return;
    }
    tracing::info!(ns = name, ?pids, "killing processes left in network namespace");
    for &pid in &pids {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids_in(path).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the processes in namespace `name`, deletes it and its state directory.
pub(crate) fn delete_ns(name: &str) -> Result<()> {
    check_name(name)?;
    let path = Path::new(NETNS_DIR).join(name);
    kill_all_in(name, &path);
    let state = Path::new(STATE_DIR).join(name);
    let state_result = match std::fs::remove_dir_all(&state) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!("remove {}", state.display()), e)),
        _ => Ok(()),
    };
    if path.exists() {
        cmd::ip(&["netns", "del", name], None)?;
        tracing::debug!(ns = name, "network namespace deleted");
    }
    state_result
}

/// Removes every namespace (and state directory) whose name starts with `prefix`, e.g. the leftovers of a
/// crashed run (`pp-1a2b3c4d-`) or of all runs (`pp-`). Processes inside them are killed first.
/// `prefix` must start with `pp-`, so namespaces this crate did not name are never touched. Beware that
/// a broad prefix also removes the namespaces of runs still alive. Returns how many namespaces went.
pub fn sweep(prefix: &str) -> Result<usize> {
    check_name(prefix)?;
    let mut names: Vec<String> = Vec::new();
    for dir in [NETNS_DIR, STATE_DIR] {
        match std::fs::read_dir(dir) {
            Ok(rd) => names.extend(
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.starts_with(prefix) && check_name(n).is_ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("read {dir}"), e)),
        }
    }
    names.sort();
    names.dedup();
    let mut removed = 0;
    let mut first_error = None;
    for name in names {
        let had_ns = Path::new(NETNS_DIR).join(&name).exists();
        match delete_ns(&name) {
            Ok(()) => removed += usize::from(had_ns),
            Err(e) => {
                tracing::warn!(ns = %name, error = %e, "sweep could not delete");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            if removed > 0 {
                tracing::info!(prefix, removed, "swept leftover network namespaces");
            }
            Ok(removed)
        }
    }
}

/// Names of the existing namespaces (in `/run/netns`) that start with `prefix`.
pub fn list(prefix: &str) -> Result<Vec<String>> {
    let mut v: Vec<String> = match std::fs::read_dir(NETNS_DIR) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(format!("read {NETNS_DIR}"), e)),
    };
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("pp-1a2b-node").is_ok());
        assert!(check_name("pp-").is_ok());
        for bad in ["", "pp", "node", "pp-A", "pp-a/b", "pp-..", "pp-a b", "x-pp-a"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let id = new_runid();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_runid(), new_runid());
        assert_eq!(ns_name("ab12", "node"), "pp-ab12-node");
    }

    #[test]
    fn sweep_refuses_foreign_prefixes() {
        assert!(matches!(sweep(""), Err(Error::InvalidName(_))));
        assert!(matches!(sweep("cni-"), Err(Error::InvalidName(_))));
    }
}
