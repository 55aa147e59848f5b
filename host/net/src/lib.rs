//! Network namespaces as Azure VNets: topology, a router whose forwarding follows peerings, NSGs and
//! routes, and a DNS resolver per VNet.
//!
//! The host backend emulates AKS pulling from ACR on one Linux host (root needed):
//! - [`NetNs`]: a named network namespace (`pp-<runid>-<role>`), with ways for this process, which stays
//!   in the root namespace, to act inside it: [`NetNs::run`] (a dedicated thread after `setns`),
//!   sockets bound inside it ([`NetNs::bind_tcp`], [`NetNs::bind_udp`]), probes ([`NetNs::connect_tcp`])
//!   and child processes ([`NetNs::command`], [`NetNs::command_with_resolv_conf`]).
//! - [`Topology`]: the node, router and registry namespaces built from a [`TopologySpec`], whose router
//!   forwards according to a [`Policy`] ([`Topology::apply`], one atomic nftables transaction).
//! - [`DnsServer`]: the VNet's resolver (at `168.63.129.16:53` in the node namespace) answering from a
//!   [`DnsView`] that can be swapped atomically.
//! - [`sweep`]: removes what crashed runs left behind.
//!
//! Safety: nothing here links a namespace to the root namespace or touches the root namespace's
//! interfaces, routes or nftables; all traffic stays inside the run's own namespaces.

#![warn(missing_docs)]

mod cidr;
mod cmd;
pub mod dns;
mod error;
mod netns;
mod topology;

use std::net::Ipv4Addr;

pub use cidr::Ipv4Net;
pub use dns::{DnsServer, DnsView};
pub use error::{Error, Result};
pub use netns::{NAME_PREFIX, NETNS_DIR, NetNs, STATE_DIR, list, new_runid, ns_name, sweep};
pub use topology::{
    EndpointSpec, Flow, InternetAccess, NodeSpec, Policy, PublicSpec, RouteEntry, RouteFate, RouteOrigin, Topology,
    TopologySpec, VnetSpec,
};

/// Azure's virtual public IP, the VNet DNS resolver every VM is given.
pub const AZURE_DNS: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

/// The instance metadata service's address.
pub const AZURE_IMDS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// The `resolv.conf` of a node whose resolver is `dns_ip`: one try per second, two attempts, so a
/// silent resolver fails fast (about 2 s) instead of glibc's and Go's default 10 s.
pub fn resolv_conf(dns_ip: Ipv4Addr) -> String {
    format!("nameserver {dns_ip}\noptions timeout:1 attempts:2\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn resolv_conf_text() {
        assert_eq!(super::resolv_conf(super::AZURE_DNS), "nameserver 168.63.129.16\noptions timeout:1 attempts:2\n");
    }
}
