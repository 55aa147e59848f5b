//! The host backend's VNets: a node, a router and a registry namespace, and the router's policy.
//!
//! ```text
//!  node ns                     router ns                                registry ns
//!  eth0 10.1.0.4/24  <----->  n0 10.1.0.1/24 (gateway, proxy_arp)
//!  lo   168.63.129.16/32       v0 10.0.0.1/32   <----------------->   v0  10.0.1.4/32 (endpoint, hub VNet)
//!  lo   169.254.169.254/32     ...one veth per VNet holding endpoints
//!                              inet0 203.0.113.10/32 (egress) <---->   inet0 198.51.100.20/32 (public registry)
//!                              nft: table inet pullproof (forward policy drop, SNAT to egress)
//! ```
//!
//! No namespace has a link to the root namespace: every veth is created directly inside two of the
//! run's own namespaces (`ip -n A link add X type veth peer name Y netns B`). The node only has routes to
//! the VNet prefixes and the public addresses of the spec, all via the router; the router and registry
//! only have routes to each other.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::dns::{DnsServer, DnsView};
use crate::netns::{NetNs, ns_name};
use crate::{Error, Ipv4Net, Result, resolv_conf};

/// One emulated Azure VNet: a name and its address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetSpec {
    /// The VNet's name (as in ARM).
    pub name: String,
    /// Its address space, e.g. `10.1.0.0/16`. Must be private (10/8, 172.16/12, 192.168/16).
    pub cidr: Ipv4Net,
}

/// The node (the VM where the private containerd runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The VNet the node's subnet belongs to.
    pub vnet: String,
    /// The node's address with its subnet's prefix length, e.g. `10.1.0.4/24`. The subnet's first
    /// address (`10.1.0.1`) is the gateway, held by the router.
    pub address: Ipv4Net,
    /// The VNet's DNS resolver address, put on the node's loopback (Azure: `168.63.129.16`).
    pub dns: Ipv4Addr,
    /// The instance metadata address, put on the node's loopback (Azure: `169.254.169.254`).
    pub imds: Ipv4Addr,
    /// The VNet's custom DNS servers (`dhcpOptions.dnsServers`): the node's `resolv.conf` names
    /// the first instead of `dns`. Empty: Azure's resolver.
    pub dns_servers: Vec<Ipv4Addr>,
}

impl NodeSpec {
    /// The node's IP address.
    pub fn ip(&self) -> Ipv4Addr {
        self.address.addr()
    }

    /// The node subnet's gateway (its first address), held by the router.
    pub fn gateway(&self) -> Ipv4Addr {
        self.address.gateway()
    }
}

/// A private endpoint's address (held by the registry namespace, reached over the VNet's segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The VNet holding the endpoint (e.g. the hub).
    pub vnet: String,
    /// The endpoint's address, inside that VNet.
    pub ip: Ipv4Addr,
}

/// The "internet" side: the registry's public address and the node's public egress address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSpec {
    /// The registry's public address (e.g. `198.51.100.20`), held by the registry namespace.
    pub registry_ip: Ipv4Addr,
    /// The address node traffic to the internet is SNATed to (e.g. `203.0.113.10`), held by the router.
    /// This is what a registry firewall rule sees.
    pub egress_ip: Ipv4Addr,
    /// More public addresses held by the registry namespace (e.g. an emulated Entra login endpoint).
    pub extra_ips: Vec<Ipv4Addr>,
}

impl PublicSpec {
    /// All public addresses held by the registry namespace: `registry_ip` then `extra_ips`.
    pub fn hosted_ips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        std::iter::once(self.registry_ip).chain(self.extra_ips.iter().copied())
    }
}

/// What to build: the VNets, the node, the private endpoints and the public addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologySpec {
    /// The VNets (at least the node's and the endpoints').
    pub vnets: Vec<VnetSpec>,
    /// The node.
    pub node: NodeSpec,
    /// The private endpoints.
    pub endpoints: Vec<EndpointSpec>,
    /// Custom DNS servers (forwarder VMs), held by the registry namespace like endpoints. There,
    /// Azure's resolver address is on the loopback, answering as the first one's VNet sees it
    /// ([`Topology::start_forwarder_dns`]).
    pub dns_forwarders: Vec<EndpointSpec>,
    /// The public side.
    pub public: PublicSpec,
}

fn is_private(ip: Ipv4Addr) -> bool {
    ip.is_private()
}

fn is_documentation(ip: Ipv4Addr) -> bool {
    ip.is_documentation()
}

impl TopologySpec {
    /// A typical spec: an AKS VNet `aks-vnet` 10.1.0.0/16 with the node at 10.1.0.4/24, a hub VNet
    /// `hub-vnet` 10.0.0.0/16 with the registry's private endpoint at 10.0.1.4, the registry's public
    /// address 198.51.100.20 and the egress address 203.0.113.10.
    pub fn example() -> TopologySpec {
        TopologySpec {
            vnets: vec![
                VnetSpec { name: "aks-vnet".into(), cidr: Ipv4Net::new(Ipv4Addr::new(10, 1, 0, 0), 16).unwrap() },
                VnetSpec { name: "hub-vnet".into(), cidr: Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 16).unwrap() },
            ],
            node: NodeSpec {
                vnet: "aks-vnet".into(),
                address: Ipv4Net::new(Ipv4Addr::new(10, 1, 0, 4), 24).unwrap(),
                dns: Ipv4Addr::new(168, 63, 129, 16),
                imds: Ipv4Addr::new(169, 254, 169, 254),
                dns_servers: Vec::new(),
            },
            endpoints: vec![EndpointSpec { vnet: "hub-vnet".into(), ip: Ipv4Addr::new(10, 0, 1, 4) }],
            dns_forwarders: Vec::new(),
            public: PublicSpec {
                registry_ip: Ipv4Addr::new(198, 51, 100, 20),
                egress_ip: Ipv4Addr::new(203, 0, 113, 10),
                extra_ips: Vec::new(),
            },
        }
    }

    /// The VNet named `name`.
    pub fn vnet(&self, name: &str) -> Option<&VnetSpec> {
        self.vnets.iter().find(|v| v.name == name)
    }

    /// Checks the spec: known VNet names, non-overlapping private VNet prefixes, the node and endpoints
    /// inside their VNets, public addresses in the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
    /// 203.0.113.0/24), DNS and IMDS addresses outside every VNet and public address, no duplicates.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        for (i, v) in self.vnets.iter().enumerate() {
            if v.name.is_empty() {
                return bad("a VNet has an empty name".into());
            }
            if !is_private(v.cidr.network()) || !is_private(v.cidr.broadcast()) {
                return bad(format!("VNet {} {} is not in a private range", v.name, v.cidr));
            }
            if v.cidr.prefix_len() > 29 {
                return bad(format!("VNet {} {} is too small", v.name, v.cidr));
            }
            for w in &self.vnets[..i] {
                if w.name == v.name {
                    return bad(format!("VNet {} declared twice", v.name));
                }
                if w.cidr.overlaps(&v.cidr) {
                    return bad(format!("VNets {} {} and {} {} overlap", w.name, w.cidr, v.name, v.cidr));
                }
            }
        }
        let n = &self.node;
        let Some(nv) = self.vnet(&n.vnet) else { return bad(format!("node VNet {} is not declared", n.vnet)) };
        if n.address.prefix_len() > 29 || !nv.cidr.contains_net(&n.address.trunc()) {
            return bad(format!("node address {} is not a subnet of VNet {} {}", n.address, nv.name, nv.cidr));
        }
        let ip = n.ip();
        if ip == n.address.network() || ip == n.address.broadcast() || ip == n.gateway() {
            return bad(format!("node address {} is the subnet's network, broadcast or gateway address", n.address));
        }
        let mut used: Vec<(Ipv4Addr, &str)> = vec![(ip, "node"), (n.gateway(), "node gateway")];
        for e in self.endpoints.iter().chain(&self.dns_forwarders) {
            let Some(v) = self.vnet(&e.vnet) else { return bad(format!("endpoint VNet {} is not declared", e.vnet)) };
            if !v.cidr.contains(e.ip) {
                return bad(format!("endpoint {} is not inside VNet {} {}", e.ip, v.name, v.cidr));
            }
            if e.ip == v.cidr.network() || e.ip == v.cidr.gateway() || e.ip == v.cidr.broadcast() {
                return bad(format!("endpoint {} is a reserved address of VNet {}", e.ip, v.name));
            }
            used.push((e.ip, "endpoint"));
        }
        let p = &self.public;
        for (ip, what) in p.hosted_ips().map(|i| (i, "public")).chain([(p.egress_ip, "egress")]) {
            if !is_documentation(ip) {
                return bad(format!("{what} address {ip} is not in a documentation range"));
            }
            used.push((ip, what));
        }
        for ip in &n.dns_servers {
            if !self.dns_forwarders.iter().any(|f| f.ip == *ip) {
                return bad(format!("the node's DNS server {ip} is not one of the DNS forwarders"));
            }
        }
        for (ip, what) in [(n.dns, "DNS"), (n.imds, "IMDS")] {
            if self.vnets.iter().any(|v| v.cidr.contains(ip)) || ip.is_unspecified() || ip.is_loopback() {
                return bad(format!("{what} address {ip} must lie outside every VNet and loopback"));
            }
            used.push((ip, what));
        }
        for (i, (a, wa)) in used.iter().enumerate() {
            if let Some((_, wb)) = used[..i].iter().find(|(b, _)| b == a) {
                return bad(format!("address {a} is used twice ({wb} and {wa})"));
            }
        }
        Ok(())
    }
}

/// A directed private flow: connections from `src` to `dst` (replies follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Source prefix.
    pub src: Ipv4Net,
    /// Destination prefix.
    pub dst: Ipv4Net,
}

impl Flow {
    /// A flow from `src` to `dst`.
    pub fn new(src: Ipv4Net, dst: Ipv4Net) -> Flow {
        Flow { src, dst }
    }
}

/// What the node may do towards the public addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InternetAccess {
    /// Forwarded and SNATed to the egress address (the default: AKS nodes have outbound access).
    #[default]
    Snat,
    /// Dropped silently (e.g. a route table sending 0.0.0.0/0 nowhere).
    Drop,
}

/// The router's forwarding policy, computed by the caller from the Azure state.
///
/// Private traffic is stateless per flow: a packet passes if its (source, destination) matches an
/// `allowed` flow, or it is a reply (conntrack established/related) to one. Removing a flow therefore
/// also stops connections already open, as deleting an Azure peering does. Everything else between
/// VNets is dropped silently (clients see a real `i/o timeout`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Private flows that pass (peering connected both ways, no NSG deny).
    pub allowed: Vec<Flow>,
    /// Private flows answered with ICMP net-unreachable (`connect: network is unreachable`). These win
    /// over `allowed`.
    pub unreachable: Vec<Flow>,
    /// Node to public addresses.
    pub internet: InternetAccess,
    /// The routes of the node's subnet (system and user-defined), realised as the router's
    /// routing table for traffic from the node: the kernel's longest-prefix match decides which
    /// applies, and a `Drop` route discards the packet silently (Azure's next hop `None`).
    pub routes: Vec<RouteEntry>,
}

/// One route of the node's subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    /// Destination prefix.
    pub prefix: Ipv4Net,
    /// What happens to matching packets.
    pub fate: RouteFate,
    /// Who made it: at equal prefix length a user-defined route wins over a system route.
    pub origin: RouteOrigin,
}

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteFate {
    /// Forwarded on (VNet, peering, gateway, appliance, internet).
    Forward,
    /// Discarded (next hop `None`).
    Drop,
    /// Sent to the world's TLS-inspecting appliance (next hop `VirtualAppliance` at its
    /// address), which the router hosts: delivered to the router's own sockets with the
    /// destination address unchanged, as a transparent proxy receives them.
    Appliance,
}

/// Where a route comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOrigin {
    /// Azure's own (VNet address space, peerings, default route).
    System,
    /// A route table's.
    User,
}

impl Policy {
    /// A policy allowing exactly `flows` (and internet access with SNAT).
    pub fn allow(flows: impl IntoIterator<Item = Flow>) -> Policy {
        Policy { allowed: flows.into_iter().collect(), ..Policy::default() }
    }
}

const NODE_IF: &str = "eth0";
const ROUTER_NODE_IF: &str = "n0";
const INET_IF: &str = "inet0";
const TABLE: &str = "pullproof";
/// The router's routing table for packets from the node (the node subnet's effective routes).
const NODE_ROUTES: u32 = 100;

/// The router's and registry's link for one VNet holding endpoints.
#[derive(Debug, Clone)]
struct Segment {
    iface: String,
    router_ip: Ipv4Addr,
    endpoints: Vec<Ipv4Addr>,
}

/// A built topology. Dropping it deletes the three namespaces (killing what still runs in them), and
/// with them every veth and the node's `resolv.conf`.
#[derive(Debug)]
pub struct Topology {
    runid: String,
    spec: TopologySpec,
    segments: Vec<Segment>,
    resolv_conf: PathBuf,
    node: NetNs,
    router: NetNs,
    registry: NetNs,
}

impl Topology {
    /// Builds the namespaces `pp-<runid>-node`, `pp-<runid>-router` and `pp-<runid>-registry`, their
    /// veths, addresses and routes, and loads a policy that drops all private traffic (internet allowed).
    /// On error everything created so far is removed again.
    pub fn build(runid: &str, spec: &TopologySpec) -> Result<Topology> {
        let started = Instant::now();
        spec.validate()?;
        let node = NetNs::create(&ns_name(runid, "node"))?;
        let router = NetNs::create(&ns_name(runid, "router"))?;
        let registry = NetNs::create(&ns_name(runid, "registry"))?;

        // One segment per VNet holding endpoints (or DNS forwarders), in spec order.
        let mut segments: Vec<(String, Segment)> = Vec::new();
        for e in spec.endpoints.iter().chain(&spec.dns_forwarders) {
            if let Some((_, s)) = segments.iter_mut().find(|(v, _)| *v == e.vnet) {
                s.endpoints.push(e.ip);
            } else {
                let cidr = spec.vnet(&e.vnet).expect("validated").cidr;
                let iface = format!("v{}", segments.len());
                segments.push((e.vnet.clone(), Segment { iface, router_ip: cidr.gateway(), endpoints: vec![e.ip] }));
            }
        }
        let segments: Vec<Segment> = segments.into_iter().map(|(_, s)| s).collect();

        let n = &spec.node;
        let p = &spec.public;
        let (node_name, reg_name) = (node.name(), registry.name());

        // Router: create every veth from here, peers land directly in the node/registry namespaces.
        let mut r = String::new();
        r += &format!("link add {ROUTER_NODE_IF} type veth peer name {NODE_IF} netns {node_name}\n");
        for s in &segments {
            r += &format!("link add {0} type veth peer name {0} netns {reg_name}\n", s.iface);
        }
        r += &format!("link add {INET_IF} type veth peer name {INET_IF} netns {reg_name}\n");
        r += &format!("addr add {} dev {ROUTER_NODE_IF}\n", Ipv4Net::new(n.gateway(), n.address.prefix_len())?);
        for s in &segments {
            r += &format!("addr add {}/32 dev {}\n", s.router_ip, s.iface);
        }
        r += &format!("addr add {}/32 dev {INET_IF}\n", p.egress_ip);
        for dev in std::iter::once(ROUTER_NODE_IF).chain(segments.iter().map(|s| s.iface.as_str())).chain([INET_IF]) {
            r += &format!("link set {dev} up\n");
        }
        for s in &segments {
            for ep in &s.endpoints {
                r += &format!("route add {ep}/32 dev {} src {}\n", s.iface, s.router_ip);
            }
        }
        for ip in p.hosted_ips() {
            r += &format!("route add {ip}/32 dev {INET_IF} src {}\n", p.egress_ip);
        }

        // Node: its address, the resolver and IMDS on loopback, routes to VNets and public IPs via router.
        let mut nd = String::new();
        nd += &format!("addr add {} dev {NODE_IF}\n", n.address);
        nd += &format!("addr add {}/32 dev lo\n", n.dns);
        nd += &format!("addr add {}/32 dev lo\n", n.imds);
        nd += &format!("link set {NODE_IF} up\n");
        for v in &spec.vnets {
            nd += &format!("route add {} via {}\n", v.cidr.trunc(), n.gateway());
        }
        for ip in p.hosted_ips() {
            nd += &format!("route add {ip}/32 via {}\n", n.gateway());
        }

        // Registry: endpoints per segment with source-based return routes, public IPs on inet0.
        let mut rg = String::new();
        for (i, s) in segments.iter().enumerate() {
            for ep in &s.endpoints {
                rg += &format!("addr add {ep}/32 dev {}\n", s.iface);
            }
            rg += &format!("link set {} up\n", s.iface);
            let table = 100 + i;
            rg += &format!("route add default via {} dev {} onlink table {table}\n", s.router_ip, s.iface);
            for ep in &s.endpoints {
                rg += &format!("rule add from {ep}/32 lookup {table} priority {}\n", 1000 + i);
            }
        }
        for ip in p.hosted_ips() {
            rg += &format!("addr add {ip}/32 dev {INET_IF}\n");
        }
        if !spec.dns_forwarders.is_empty() {
            // What the forwarders ask: Azure's resolver, as their VNet sees it.
            rg += &format!("addr add {}/32 dev lo\n", n.dns);
        }
        rg += &format!("link set {INET_IF} up\n");
        rg += &format!("route add {}/32 dev {INET_IF}\n", p.egress_ip);

        for (ns, key, value) in [
            (&router, "net/ipv4/ip_forward", "1"),
            (&router, "net/ipv4/conf/all/rp_filter", "0"),
            (&router, "net/ipv4/conf/default/rp_filter", "0"),
            (&registry, "net/ipv4/conf/all/rp_filter", "0"),
            (&registry, "net/ipv4/conf/default/rp_filter", "0"),
        ] {
            ns.set_sysctl(key, value)?;
        }
        // Packets from the node consult the node subnet's routes first; `throw` falls through
        // to the main table (forwarding), `blackhole` discards.
        r += &format!("rule add iif {ROUTER_NODE_IF} lookup {NODE_ROUTES} pref 100\n");
        router.ip_batch(&r)?;
        // Answer ARP on the node's link for everything the router routes elsewhere (endpoints in the
        // node's own subnet included), without the default random delay of up to 0.8 s.
        router.set_sysctl(&format!("net/ipv4/conf/{ROUTER_NODE_IF}/proxy_arp"), "1")?;
        router.set_sysctl(&format!("net/ipv4/neigh/{ROUTER_NODE_IF}/proxy_delay"), "0")?;
        node.ip_batch(&nd)?;
        registry.ip_batch(&rg)?;

        let resolv = node.state_dir()?.join("resolv.conf");
        let nameserver = n.dns_servers.first().copied().unwrap_or(n.dns);
        std::fs::write(&resolv, resolv_conf(nameserver))
            .map_err(|e| Error::io(format!("write {}", resolv.display()), e))?;
        let topo = Topology {
            runid: runid.to_owned(),
            spec: spec.clone(),
            segments,
            resolv_conf: resolv,
            node,
            router,
            registry,
        };
        topo.apply(&Policy::default())?;
        tracing::info!(runid, elapsed_ms = started.elapsed().as_millis() as u64, "topology built");
        Ok(topo)
    }

    /// The run id the namespaces are named after.
    pub fn runid(&self) -> &str {
        &self.runid
    }

    /// The spec this topology was built from.
    pub fn spec(&self) -> &TopologySpec {
        &self.spec
    }

    /// The node namespace (containerd, the credential provider, the DNS server's and IMDS's sockets).
    pub fn node(&self) -> &NetNs {
        &self.node
    }

    /// The router namespace.
    pub fn router(&self) -> &NetNs {
        &self.router
    }

    /// The registry namespace (listeners at the endpoint and public addresses).
    pub fn registry(&self) -> &NetNs {
        &self.registry
    }

    /// The node's `resolv.conf` (pointing at the node's DNS address), used by [`Topology::node_command`].
    pub fn resolv_conf_path(&self) -> &Path {
        &self.resolv_conf
    }

    /// A command running `program` in the node namespace with the node's own resolver (see
    /// [`NetNs::command_with_resolv_conf`]): what containerd and the credential provider run as.
    pub fn node_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.node.command_with_resolv_conf(program, &self.resolv_conf)
    }

    /// Binds a UDP socket at the node's DNS address, port 53, and starts a [`DnsServer`] on it
    /// (call within a tokio runtime).
    pub fn start_dns(&self, view: DnsView) -> Result<DnsServer> {
        let sock = self.node.bind_udp(SocketAddr::from((self.spec.node.dns, 53)))?;
        DnsServer::start(sock, view)
    }

    /// Binds a UDP socket at Azure's resolver address, port 53, in the registry namespace and
    /// starts a [`DnsServer`] on it: what the DNS forwarders ask, answering as their VNet sees
    /// the zones (call within a tokio runtime). Fails when the spec has no forwarders.
    pub fn start_forwarder_dns(&self, view: DnsView) -> Result<DnsServer> {
        if self.spec.dns_forwarders.is_empty() {
            return Err(Error::InvalidSpec(
                "no DNS forwarders: Azure's resolver is not in the registry namespace".into(),
            ));
        }
        let sock = self.registry.bind_udp(SocketAddr::from((self.spec.node.dns, 53)))?;
        DnsServer::start(sock, view)
    }

    /// The nftables script [`Topology::apply`] loads for `policy`.
    pub fn ruleset(&self, policy: &Policy) -> String {
        let mut s = String::new();
        // Create-then-delete makes the script work whether or not the table exists; nft applies the
        // whole file as one transaction, so the router never forwards under a half-loaded policy.
        s += &format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
        s += &format!("table inet {TABLE} {{\n");
        s += "  chain forward {\n    type filter hook forward priority filter; policy drop;\n";
        s += "    ct state invalid drop\n";
        for f in &policy.unreachable {
            s += &format!(
                "    ip saddr {} ip daddr {} reject with icmp type net-unreachable\n",
                f.src.trunc(),
                f.dst.trunc()
            );
        }
        for f in &policy.allowed {
            let (src, dst) = (f.src.trunc(), f.dst.trunc());
            s += &format!("    ip saddr {src} ip daddr {dst} accept\n");
            s += &format!("    ip saddr {dst} ip daddr {src} ct state established,related accept\n");
        }
        if policy.internet == InternetAccess::Snat {
            s += &format!("    iifname \"{ROUTER_NODE_IF}\" oifname \"{INET_IF}\" accept\n");
            s += &format!(
                "    iifname \"{INET_IF}\" oifname \"{ROUTER_NODE_IF}\" ct state established,related accept\n"
            );
        }
        s += "    counter comment \"dropped by policy\"\n  }\n";
        s += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
        s += &format!("    oifname \"{INET_IF}\" snat ip to {}\n  }}\n", self.spec.public.egress_ip);
        s += "}\n";
        s
    }

    /// The `ip -batch` script that replaces the node's routing table with `policy.routes`:
    /// user routes at metric 0, system routes at metric 10 (so a user route wins only at equal
    /// prefix length, as in Azure), and the kernel's longest-prefix match decides.
    pub fn route_script(policy: &Policy) -> String {
        // A placeholder route makes the flush succeed on an empty table; it is flushed too.
        let mut s = format!("route replace unreachable 255.255.255.255/32 table {NODE_ROUTES}\n");
        s += &format!("route flush table {NODE_ROUTES}\n");
        for r in &policy.routes {
            let kind = match r.fate {
                RouteFate::Forward => "throw",
                RouteFate::Drop => "blackhole",
                RouteFate::Appliance => "local",
            };
            let metric = match r.origin {
                RouteOrigin::User => 0,
                RouteOrigin::System => 10,
            };
            let dev = if r.fate == RouteFate::Appliance { " dev lo" } else { "" };
            s += &format!("route replace {kind} {}{dev} table {NODE_ROUTES} metric {metric}\n", r.prefix.trunc());
        }
        s
    }

    /// Atomically replaces the router's `inet pullproof` table with one enforcing `policy`.
    pub fn apply(&self, policy: &Policy) -> Result<()> {
        let started = Instant::now();
        self.router.nft(&self.ruleset(policy))?;
        self.router.ip_batch(&Self::route_script(policy))?;
        tracing::debug!(
            runid = %self.runid,
            allowed = policy.allowed.len(),
            unreachable = policy.unreachable.len(),
            internet = ?policy.internet,
            elapsed_us = started.elapsed().as_micros() as u64,
            "policy applied"
        );
        Ok(())
    }

    /// Packets the router dropped by policy so far (the forward chain's final counter).
    pub fn dropped_packets(&self) -> Result<u64> {
        let out = self.router.nft_args(&["list", "chain", "inet", TABLE, "forward"])?;
        Ok(out
            .lines()
            .find(|l| l.contains("dropped by policy"))
            .and_then(|l| l.split_whitespace().skip_while(|w| *w != "packets").nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Names of the router's interfaces towards the registry, one per VNet holding endpoints.
    pub fn segment_interfaces(&self) -> Vec<&str> {
        self.segments.iter().map(|s| s.iface.as_str()).collect()
    }

    /// Deletes the namespaces now, reporting the first error (dropping does the same, logging errors).
    pub fn teardown(self) -> Result<()> {
        let started = Instant::now();
        let Topology { node, router, registry, runid, .. } = self;
        let results = [node.delete(), router.delete(), registry.delete()];
        tracing::info!(%runid, elapsed_ms = started.elapsed().as_millis() as u64, "topology torn down");
        results.into_iter().collect::<Result<Vec<()>>>().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_script_realises_each_fate() {
        let net = |s: &str| {
            let (ip, len) = s.split_once('/').unwrap();
            Ipv4Net::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap()
        };
        let policy = Policy {
            routes: vec![
                RouteEntry { prefix: net("10.2.0.0/16"), fate: RouteFate::Forward, origin: RouteOrigin::System },
                RouteEntry { prefix: net("10.2.0.0/24"), fate: RouteFate::Appliance, origin: RouteOrigin::User },
                RouteEntry { prefix: net("10.3.0.0/24"), fate: RouteFate::Drop, origin: RouteOrigin::User },
            ],
            ..Policy::default()
        };
        let script = Topology::route_script(&policy);
        assert!(script.contains("route replace throw 10.2.0.0/16 table 100 metric 10\n"), "{script}");
        // Delivered to the router's own sockets, destination unchanged.
        assert!(script.contains("route replace local 10.2.0.0/24 dev lo table 100 metric 0\n"), "{script}");
        assert!(script.contains("route replace blackhole 10.3.0.0/24 table 100 metric 0\n"), "{script}");
    }
}
