//! Tests on real network namespaces (root only). Their names start with `host_` so nextest runs them
//! one at a time (see .config/nextest.toml). Without root they are skipped loudly, unless CI=true,
//! where they fail.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use pullproof_host_net::dns::{self, rcode, rtype};
use pullproof_host_net::{
    DnsView, EndpointSpec, Flow, InternetAccess, Ipv4Net, NetNs, Policy, Topology, TopologySpec, VnetSpec, list,
    new_runid, ns_name, sweep,
};

const EP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 4);
const ACR: &str = "myacr.azurecr.io";
const SHORT: Duration = Duration::from_millis(300);

/// True when the test may touch namespaces. Not root: a failure, or a loud skip when
/// `PULLPROOF_SKIP_HOST_TESTS=1`.
fn root() -> bool {
    // SAFETY: geteuid has no preconditions and never fails.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() != Ok("1") {
        panic!(
            "host_ tests need root to create network namespaces (or PULLPROOF_SKIP_HOST_TESTS=1 to skip them knowingly)"
        );
    }
    // Straight to fd 2: libtest's capture would hide an eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1): host_ tests need root to create network namespaces !!!!!\n"
    );
    false
}

/// Sweeps the run's namespaces when dropped (also when the test panics), and checks none is left.
struct Guard {
    prefix: String,
}

impl Guard {
    fn new() -> (Guard, String) {
        let runid = new_runid();
        // No trailing dash: also covers ids derived from this one (`{runid}0`, ...).
        (Guard { prefix: format!("pp-{runid}") }, runid)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let left = list(&self.prefix).unwrap_or_default();
        let _ = sweep(&self.prefix);
        if !left.is_empty() && !std::thread::panicking() {
            panic!("namespaces left behind: {left:?}");
        }
    }
}

fn hub_to_aks() -> Flow {
    Flow::new("10.1.0.0/16".parse().unwrap(), "10.0.0.0/16".parse().unwrap())
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// Accepts one connection on `l` in a thread and returns the peer address seen.
fn accept_one(l: std::net::TcpListener) -> std::thread::JoinHandle<std::io::Result<(TcpStream, SocketAddr)>> {
    std::thread::spawn(move || l.accept())
}

fn ip_netns_list() -> String {
    String::from_utf8(std::process::Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap()
}

#[test]
fn host_policy_drop_unreachable_refused_and_snat() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let spec = TopologySpec::example();
    let t0 = Instant::now();
    let topo = Topology::build(&runid, &spec).unwrap();
    eprintln!("build: {:?}", t0.elapsed());
    let names = ip_netns_list();
    for role in ["node", "router", "registry"] {
        assert!(names.contains(&ns_name(&runid, role)), "{role} missing from `ip netns list`: {names}");
    }
    let node = topo.node();
    let l = topo.registry().bind_tcp(sa(EP, 443)).unwrap();

    // Default policy: private traffic dropped -> a real timeout, not a refusal.
    let err = node.connect_tcp(sa(EP, 443), SHORT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");

    // Peered: the connection goes through and data flows both ways.
    let t = Instant::now();
    topo.apply(&Policy::allow([hub_to_aks()])).unwrap();
    eprintln!("apply: {:?}", t.elapsed());
    let accepted = accept_one(l.try_clone().unwrap());
    let mut c = node.connect_tcp(sa(EP, 443), SHORT).unwrap();
    let (mut s, peer) = accepted.join().unwrap().unwrap();
    assert_eq!(peer.ip(), spec.node.ip());
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    s.write_all(b"pong").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");

    // Allowed, nobody listening: refused (RST passes back as a reply).
    let err = node.connect_tcp(sa(EP, 444), SHORT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");

    // Peering removed: new connections time out, and the open one stops carrying data.
    let dropped_before = topo.dropped_packets().unwrap();
    topo.apply(&Policy::default()).unwrap();
    let err = node.connect_tcp(sa(EP, 443), SHORT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    c.write_all(b"lost").unwrap();
    s.set_read_timeout(Some(SHORT)).unwrap();
    let e = s.read(&mut buf).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{e}");
    assert!(topo.dropped_packets().unwrap() > dropped_before);

    // Blackhole-ish: ICMP net-unreachable, even if also "allowed".
    let flow = hub_to_aks();
    topo.apply(&Policy { allowed: vec![flow], unreachable: vec![flow], ..Policy::default() }).unwrap();
    let err = node.connect_tcp(sa(EP, 443), SHORT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NetworkUnreachable, "{err}");

    // Public: forwarded and SNATed, the registry sees the egress address.
    let public = topo.registry().bind_tcp(sa(spec.public.registry_ip, 443)).unwrap();
    let accepted = accept_one(public.try_clone().unwrap());
    let _c = node.connect_tcp(sa(spec.public.registry_ip, 443), SHORT).unwrap();
    let (_s, peer) = accepted.join().unwrap().unwrap();
    assert_eq!(peer.ip(), spec.public.egress_ip);

    // Internet access dropped.
    topo.apply(&Policy { internet: InternetAccess::Drop, ..Policy::default() }).unwrap();
    let err = node.connect_tcp(sa(spec.public.registry_ip, 443), SHORT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");

    // The node only reaches what the spec declares: anything else is unroutable from the node.
    let err = node.connect_tcp(sa(Ipv4Addr::new(192, 0, 2, 1), 443), SHORT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NetworkUnreachable, "{err}");

    let t = Instant::now();
    topo.teardown().unwrap();
    eprintln!("teardown: {:?}", t.elapsed());
    let names = ip_netns_list();
    assert!(!names.contains(&format!("pp-{runid}-")), "{names}");
}

/// Every link of the run's namespaces has its peer in another of the run's namespaces; nothing in
/// the root namespace changes (links, routes, nftables).
#[test]
fn host_no_link_to_root_namespace() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let root_state = || {
        let run = |args: &[&str]| {
            let o = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        (run(&["ip", "-o", "link"]), run(&["ip", "route", "show", "table", "all"]), run(&["nft", "list", "ruleset"]))
    };
    let before = root_state();
    let topo = Topology::build(&runid, &TopologySpec::example()).unwrap();
    topo.apply(&Policy::allow([hub_to_aks()])).unwrap();
    assert_eq!(root_state(), before, "the root namespace changed");
    let ours = [topo.node(), topo.router(), topo.registry()];
    for ns in ours {
        let links = ns.ip(&["-o", "-d", "link"]).unwrap();
        for line in links.lines().filter(|l| !l.contains(": lo:")) {
            let peer_ns = line.split(" link-netns ").nth(1).and_then(|r| r.split_whitespace().next());
            let peer_ns =
                peer_ns.unwrap_or_else(|| panic!("link without a named peer namespace in {}: {line}", ns.name()));
            assert!(ours.iter().any(|o| o.name() == peer_ns), "{line}");
        }
        let routes = ns.ip(&["route", "show", "table", "main"]).unwrap();
        assert!(!routes.contains("default"), "{}: {routes}", ns.name());
    }
    drop(topo);
    assert_eq!(root_state(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_dns_in_node_namespace() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let spec = TopologySpec::example();
    let topo = Topology::build(&runid, &spec).unwrap();
    let view =
        DnsView::new().with_cname(ACR, "myacr.privatelink.azurecr.io").with_a("myacr.privatelink.azurecr.io", [EP]);
    let server = topo.start_dns(view).unwrap();
    assert_eq!(server.local_addr(), sa(spec.node.dns, 53));

    // Our own client from inside the node namespace.
    let dns_addr = sa(spec.node.dns, 53);
    let ask = |name: &str, t: u16| {
        topo.node()
            .run(|| {
                let c = UdpSocket::bind("0.0.0.0:0").unwrap();
                dns::lookup(&c, dns_addr, name, t, Duration::from_secs(2))
            })
            .unwrap()
            .unwrap()
    };
    let m = tokio::task::block_in_place(|| ask(ACR, rtype::A));
    assert_eq!(m.a_records(), vec![EP]);
    let m = tokio::task::block_in_place(|| ask("other.azurecr.io", rtype::A));
    assert_eq!(m.header.rcode(), rcode::NXDOMAIN);

    // A child process of the node resolves through its own resolv.conf (mount-namespace trick) while the
    // host's /etc/resolv.conf stays as it was.
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    let getent = |name: &'static str| {
        let mut c = topo.node_command("getent");
        c.args(["hosts", name]);
        c
    };
    let run = |mut c: std::process::Command| tokio::task::spawn_blocking(move || c.output().unwrap());
    let t = Instant::now();
    let out = run(getent(ACR)).await.unwrap();
    eprintln!("getent in node ns: {:?}", t.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "getent failed: {out:?}");
    assert!(stdout.starts_with("10.0.1.4 "), "{stdout}");

    // The VNet link goes away: the public answer.
    server.update(DnsView::new().with_a(ACR, [spec.public.registry_ip]));
    let m = tokio::task::block_in_place(|| ask(ACR, rtype::A));
    assert_eq!(m.a_records(), vec![spec.public.registry_ip]);
    let out = run(getent(ACR)).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("198.51.100.20 "), "{out:?}");

    // Unknown names: getent's "not found" exit code 2.
    let out = run(getent("nope.azurecr.io")).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(server.queries() >= 5);

    // The child saw the node's resolver, not the host's, and kept the real /sys (cgroups visible).
    let mut c = topo.node_command("cat");
    c.arg("/etc/resolv.conf");
    let out = run(c).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), pullproof_host_net::resolv_conf(spec.node.dns));
    let mut c = topo.node().command("ls");
    c.arg("/sys/fs/cgroup");
    let out = run(c).await.unwrap();
    assert!(!out.stdout.is_empty(), "cgroups hidden: {out:?}");
    assert_eq!(std::fs::read_to_string("/etc/resolv.conf").unwrap(), host_resolv);

    // IMDS lives on the node's loopback too: reachable from the node whatever the router's policy.
    let imds = topo.node().bind_tcp(sa(spec.node.imds, 80)).unwrap();
    let acc = accept_one(imds);
    topo.node().connect_tcp(sa(spec.node.imds, 80), SHORT).unwrap();
    assert_eq!(acc.join().unwrap().unwrap().1.ip(), spec.node.imds);

    let resolv = topo.resolv_conf_path().to_owned();
    assert!(resolv.exists());
    drop(server);
    drop(topo);
    assert!(!resolv.exists(), "resolv.conf left behind");
}

#[test]
fn host_drop_cleans_up_on_panic() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let prefix = format!("pp-{runid}-");
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn({
        let runid = runid.clone();
        move || {
            let topo = Topology::build(&runid, &TopologySpec::example()).unwrap();
            let mut sleeper = topo.node().command("sleep");
            sleeper.arg("600");
            tx.send(sleeper.spawn().unwrap()).unwrap();
            assert_eq!(topo.node().pids().len(), 1);
            assert_eq!(list(&format!("pp-{runid}-")).unwrap().len(), 3);
            panic!("test panic inside a topology's life");
        }
    })
    .join();
    assert!(r.is_err());
    assert_eq!(list(&prefix).unwrap(), Vec::<String>::new());
    assert!(!ip_netns_list().contains(&prefix));
    // The process left inside the node was killed by the teardown.
    let status = rx.recv().unwrap().wait().unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(!Path::new(pullproof_host_net::STATE_DIR).join(format!("{prefix}node")).exists());
}

#[test]
fn host_sweep_removes_leftovers() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let prefix = format!("pp-{runid}-");
    let topo = Topology::build(&runid, &TopologySpec::example()).unwrap();
    let mut sleeper = topo.registry().command("sleep");
    sleeper.arg("600");
    let mut child = sleeper.spawn().unwrap();
    let state = Path::new(pullproof_host_net::STATE_DIR).join(format!("{prefix}node"));
    assert!(state.exists());
    // A crash: no Drop runs.
    std::mem::forget(topo);
    assert_eq!(list(&prefix).unwrap().len(), 3);
    // Another run's namespaces are not touched by a narrower prefix.
    let other = NetNs::create(&ns_name(&new_runid(), "other")).unwrap();
    let t = Instant::now();
    assert_eq!(sweep(&prefix).unwrap(), 3);
    eprintln!("sweep of 3 namespaces: {:?}", t.elapsed());
    assert!(list(&prefix).unwrap().is_empty());
    assert!(!state.exists());
    assert!(other.path().exists());
    // The process inside was killed.
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_eq!(sweep(&prefix).unwrap(), 0);
    assert!(sweep("other-").is_err());
}

#[test]
fn host_netns_primitives() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let ns = NetNs::create(&ns_name(&runid, "prim")).unwrap();
    // A second namespace with the same name fails, naming the command and its stderr.
    let err = NetNs::create(ns.name()).unwrap_err().to_string();
    assert!(err.contains("ip netns add") && err.contains("exists"), "{err}");
    assert!(NetNs::create("node").is_err());

    // run() happens in the namespace: another inode than ours.
    let ino = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    let ours = ino("/proc/thread-self/ns/net");
    let theirs = ns.run(|| ino("/proc/thread-self/ns/net")).unwrap();
    assert_ne!(ours, theirs);
    assert_eq!(theirs, ino(ns.path().to_str().unwrap()));
    assert_eq!(ino("/proc/thread-self/ns/net"), ours, "the calling thread must stay where it was");

    // sysctls written from a thread land in the namespace (checked by a process inside it).
    ns.set_sysctl("net/ipv4/ip_forward", "1").unwrap();
    assert_eq!(ns.sysctl("net/ipv4/ip_forward").unwrap(), "1");
    let mut c = ns.command("cat");
    c.arg("/proc/sys/net/ipv4/ip_forward");
    assert_eq!(String::from_utf8(c.output().unwrap().stdout).unwrap().trim(), "1");
    assert_eq!(ns.sysctl("net/ipv6/conf/all/disable_ipv6").unwrap(), "1");

    // Loopback inside works; the namespace only has lo.
    let l = ns.bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = l.local_addr().unwrap();
    let _c = ns.connect_tcp(addr, SHORT).unwrap();
    let (_, peer) = l.accept().unwrap();
    assert!(peer.ip().is_loopback());
    // The same port on our own loopback is another socket entirely: nothing listens there... unless
    // something on the host happens to; only check the namespace's view.
    assert_eq!(ns.ip(&["-o", "link"]).unwrap().lines().count(), 1);
    // A panic in run() reaches the caller.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ns.run(|| panic!("inside"))));
    assert!(r.is_err());
    ns.delete().unwrap();
    assert!(list(&format!("pp-{runid}-")).unwrap().is_empty());
}

/// Endpoints in three places: the hub, a third VNet, and the node's own subnet (reached via proxy ARP).
#[test]
fn host_endpoints_in_several_vnets() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let mut spec = TopologySpec::example();
    spec.vnets.push(VnetSpec { name: "spoke2".into(), cidr: "10.2.0.0/16".parse().unwrap() });
    let local_ep = Ipv4Addr::new(10, 1, 0, 10);
    let spoke_ep = Ipv4Addr::new(10, 2, 3, 4);
    spec.endpoints.push(EndpointSpec { vnet: "aks-vnet".into(), ip: local_ep });
    spec.endpoints.push(EndpointSpec { vnet: "spoke2".into(), ip: spoke_ep });
    let topo = Topology::build(&runid, &spec).unwrap();
    assert_eq!(topo.segment_interfaces(), vec!["v0", "v1", "v2"]);
    let listeners: Vec<_> =
        [EP, local_ep, spoke_ep].iter().map(|ip| topo.registry().bind_tcp(sa(*ip, 443)).unwrap()).collect();
    let aks: Ipv4Net = "10.1.0.0/16".parse().unwrap();
    let policy = Policy::allow([
        Flow::new(aks, "10.0.0.0/16".parse().unwrap()),
        Flow::new(aks, Ipv4Net::host(local_ep)),
        Flow::new(aks, "10.2.0.0/16".parse().unwrap()),
    ]);
    topo.apply(&policy).unwrap();
    for (l, ip) in listeners.iter().zip([EP, local_ep, spoke_ep]) {
        let acc = accept_one(l.try_clone().unwrap());
        topo.node().connect_tcp(sa(ip, 443), SHORT).unwrap_or_else(|e| panic!("{ip}: {e}"));
        assert_eq!(acc.join().unwrap().unwrap().1.ip(), spec.node.ip());
    }
    // Only the spoke peering removed.
    topo.apply(&Policy::allow(policy.allowed[..2].to_vec())).unwrap();
    assert_eq!(topo.node().connect_tcp(sa(spoke_ep, 443), SHORT).unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(topo.node().connect_tcp(sa(EP, 443), SHORT).is_ok());
}

#[test]
fn host_invalid_specs_create_nothing() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let mut bad = Vec::new();
    let mut s = TopologySpec::example();
    s.public.registry_ip = Ipv4Addr::new(8, 8, 8, 8);
    bad.push(s);
    let mut s = TopologySpec::example();
    s.vnets[1].cidr = "10.1.128.0/17".parse().unwrap();
    bad.push(s);
    let mut s = TopologySpec::example();
    s.endpoints[0].ip = Ipv4Addr::new(10, 3, 0, 4);
    bad.push(s);
    let mut s = TopologySpec::example();
    s.node.dns = Ipv4Addr::new(10, 1, 0, 53);
    bad.push(s);
    let mut s = TopologySpec::example();
    s.vnets[0].cidr = "100.64.0.0/16".parse().unwrap();
    bad.push(s);
    for s in bad {
        let e = Topology::build(&runid, &s).unwrap_err();
        assert!(matches!(e, pullproof_host_net::Error::InvalidSpec(_)), "{e}");
    }
    assert!(list(&format!("pp-{runid}-")).unwrap().is_empty());
}

/// Measures build, policy apply and teardown (reported on stderr; run with --nocapture to see).
#[test]
fn host_timings() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let spec = TopologySpec::example();
    let n = 5;
    let (mut build, mut apply, mut teardown) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let id = format!("{runid}{i}");
        let t = Instant::now();
        let topo = Topology::build(&id, &spec).unwrap();
        build.push(t.elapsed());
        for p in [Policy::allow([hub_to_aks()]), Policy::default()] {
            let t = Instant::now();
            topo.apply(&p).unwrap();
            apply.push(t.elapsed());
        }
        let t = Instant::now();
        topo.teardown().unwrap();
        teardown.push(t.elapsed());
        assert!(list(&format!("pp-{id}-")).unwrap().is_empty());
    }
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        format!("min {:?} median {:?} max {:?}", v[0], v[v.len() / 2], v[v.len() - 1])
    };
    eprintln!("TIMING build x{n}: {}", stats(&mut build));
    eprintln!("TIMING apply x{}: {}", apply.len(), stats(&mut apply));
    eprintln!("TIMING teardown x{n}: {}", stats(&mut teardown));
}

/// A build failing halfway (the router's name is taken) removes what it made and leaves alone what it
/// did not make; the error names the command and its stderr.
#[test]
fn host_build_failure_cleans_up() {
    if !root() {
        return;
    }
    let (_guard, runid) = Guard::new();
    let squatter = NetNs::create(&ns_name(&runid, "router")).unwrap();
    let err = Topology::build(&runid, &TopologySpec::example()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ip netns add") && text.contains("router") && text.contains("exists"), "{text}");
    assert_eq!(list(&format!("pp-{runid}-")).unwrap(), vec![squatter.name().to_owned()]);
    drop(squatter);
    assert!(list(&format!("pp-{runid}-")).unwrap().is_empty());
}

/// Go's resolver and dialer (what containerd uses), seen through skopeo run in the node namespace: the
/// exact error texts the engine has to recognise. Without skopeo it fails, unless
/// `PULLPROOF_SKIP_HOST_TESTS=1` says to skip knowingly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_go_client_sees_azure_like_errors() {
    if !root() {
        return;
    }
    if !Path::new("/usr/bin/skopeo").exists() {
        assert!(
            std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() == Ok("1"),
            "host_go_client_sees_azure_like_errors needs /usr/bin/skopeo (apt-get install skopeo, as .ci/run does), or PULLPROOF_SKIP_HOST_TESTS=1 to skip knowingly"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1) host_go_client_sees_azure_like_errors: no /usr/bin/skopeo"
        );
        return;
    }
    let (_guard, runid) = Guard::new();
    let spec = TopologySpec::example();
    let topo = Topology::build(&runid, &spec).unwrap();
    let _dns = topo.start_dns(DnsView::new().with_a(ACR, [EP])).unwrap();
    topo.apply(&Policy::allow([hub_to_aks()])).unwrap();
    let inspect = |image: &str| {
        let mut c = topo.node_command("skopeo");
        c.args(["inspect", "--retry-times", "0", &format!("docker://{image}")]);
        tokio::task::spawn_blocking(move || {
            let out = c.output().unwrap();
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
    };
    let err = inspect("nope.azurecr.io/app:v1").await.unwrap();
    assert!(err.contains("dial tcp: lookup nope.azurecr.io on 168.63.129.16:53: no such host"), "{err}");
    let err = inspect(&format!("{ACR}/app:v1")).await.unwrap();
    assert!(err.contains("dial tcp 10.0.1.4:443: connect: connection refused"), "{err}");
    topo.apply(&Policy { unreachable: vec![hub_to_aks()], ..Policy::default() }).unwrap();
    let err = inspect(&format!("{ACR}/app:v1")).await.unwrap();
    assert!(err.contains("dial tcp 10.0.1.4:443: connect: network is unreachable"), "{err}");
}
