//! Baselines: a healthy world, declared once (`fixtures/baselines/NAME.yaml`).
//!
//! A baseline names Azure resources by their short names (`aks-vnet`, `pullproofacr`); the
//! harness turns it into ARM PUTs ([`crate::arm`]) and Kubernetes objects. Every reference is
//! checked by [`Baseline::check`], so a fault or a link can never point at something that does
//! not exist.

mod model;

pub use model::*;

use std::collections::BTreeSet;

use crate::diagnostic::{Diagnostic, KeyPath, closest};

impl Baseline {
    /// The names of every VNet.
    pub fn vnet_names(&self) -> Vec<&str> {
        self.vnets.iter().map(|v| v.name.as_str()).collect()
    }

    /// The VNet named `name`.
    pub fn vnet(&self, name: &str) -> Option<&VirtualNetwork> {
        self.vnets.iter().find(|v| v.name == name)
    }

    /// Every `vnet/subnet` path.
    pub fn subnet_paths(&self) -> Vec<String> {
        self.vnets.iter().flat_map(|v| v.subnets.iter().map(move |s| format!("{}/{}", v.name, s.name))).collect()
    }

    /// The application named `name`.
    pub fn application(&self, name: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.name == name)
    }

    /// The names of every principal a role can be assigned to.
    pub fn principal_names(&self) -> Vec<String> {
        let mut out = vec!["kubelet".to_string()];
        out.extend(self.applications.iter().map(|a| format!("application:{}", a.name)));
        out
    }

    /// The subnet (`VNET/SUBNET`) whose prefix holds the IPv4 address `ip`, if any.
    pub fn subnet_holding(&self, ip: &str) -> Option<String> {
        let ip: std::net::Ipv4Addr = ip.parse().ok()?;
        self.vnets.iter().find_map(|v| {
            v.subnets.iter().find_map(|s| {
                let (net, len) = s.prefix.split_once('/')?;
                let (net, len): (std::net::Ipv4Addr, u32) = (net.parse().ok()?, len.parse().ok()?);
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
                (u32::from(ip) & mask == u32::from(net) & mask).then(|| format!("{}/{}", v.name, s.name))
            })
        })
    }

    /// Checks every cross-reference, returning one diagnostic per broken one with the path of
    /// the offending value (`vnets[0].subnets[1].nsg`), so the caller can point at it.
    pub fn check(&self) -> Vec<(KeyPath, Diagnostic)> {
        let mut out: Vec<(KeyPath, Diagnostic)> = Vec::new();
        let did_you_mean = |given: &str, known: &[&str], otherwise: &str| {
            closest(given, known.iter().copied())
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| otherwise.to_string())
        };
        let declared = |what: &str, known: &[&str]| {
            if known.is_empty() {
                format!("the baseline declares no {what}")
            } else {
                format!("declared: {}", known.join(", "))
            }
        };

        let rgs: Vec<&str> = self.resource_groups.iter().map(String::as_str).collect();
        let mut rg = |what: String, name: &str, at: KeyPath| {
            if !rgs.contains(&name) {
                out.push((
                    at,
                    Diagnostic::new(format!(
                        "{what} names resource group `{name}`, which the baseline does not declare"
                    ))
                    .hint(did_you_mean(name, &rgs, "add it to `resourceGroups`")),
                ));
            }
        };
        rg("cluster".into(), &self.cluster.resource_group, KeyPath::of("cluster.resourceGroup"));
        rg("registry".into(), &self.registry.resource_group, KeyPath::of("registry.resourceGroup"));
        for (i, v) in self.vnets.iter().enumerate() {
            rg(format!("vnet `{}`", v.name), &v.resource_group, KeyPath::of("vnets").index(i).key("resourceGroup"));
        }
        for (i, z) in self.private_dns_zones.iter().enumerate() {
            let at = KeyPath::of("privateDnsZones").index(i).key("resourceGroup");
            rg(format!("private DNS zone `{}`", z.name), &z.resource_group, at);
        }
        for (i, n) in self.nsgs.iter().enumerate() {
            rg(format!("NSG `{}`", n.name), &n.resource_group, KeyPath::of("nsgs").index(i).key("resourceGroup"));
        }
        for (i, r) in self.route_tables.iter().enumerate() {
            let at = KeyPath::of("routeTables").index(i).key("resourceGroup");
            rg(format!("route table `{}`", r.name), &r.resource_group, at);
        }
        for (i, p) in self.public_ips.iter().enumerate() {
            let at = KeyPath::of("publicIps").index(i).key("resourceGroup");
            rg(format!("public IP `{}`", p.name), &p.resource_group, at);
        }

        let subnets = self.subnet_paths();
        let subnets: Vec<&str> = subnets.iter().map(String::as_str).collect();
        let subnet_ref = |what: String, path: &str, at: KeyPath, out: &mut Vec<(KeyPath, Diagnostic)>| {
            if !subnets.contains(&path) {
                out.push((
                    at,
                    Diagnostic::new(format!(
                        "{what} names subnet `{path}`, which no vnet declares (write it as VNET/SUBNET)"
                    ))
                    .hint(did_you_mean(path, &subnets, &declared("subnets", &subnets))),
                ));
            }
        };
        for (i, p) in self.cluster.pools.iter().enumerate() {
            let at = KeyPath::of("cluster.pools").index(i).key("subnet");
            subnet_ref(format!("node pool `{}`", p.name), &p.subnet, at, &mut out);
        }
        if let Some(pe) = &self.registry.private_endpoint {
            let at = KeyPath::of("registry.privateEndpoint.subnet");
            subnet_ref("the registry's private endpoint".into(), &pe.subnet, at, &mut out);
        }
        for (i, a) in self.appliances.iter().enumerate() {
            let at = KeyPath::of("appliances").index(i);
            subnet_ref(format!("appliance `{}`", a.name), &a.subnet, at.clone().key("subnet"), &mut out);
            if subnets.contains(&a.subnet.as_str()) && self.subnet_holding(&a.ip).as_deref() != Some(a.subnet.as_str())
            {
                out.push((
                    at.key("ip"),
                    Diagnostic::new(format!(
                        "appliance `{}` address `{}` is not an IPv4 address inside its subnet `{}`",
                        a.name, a.ip, a.subnet
                    )),
                ));
            }
        }

        for (i, v) in self.vnets.iter().enumerate() {
            for (j, ip) in v.dns_servers.iter().enumerate() {
                let at = KeyPath::of("vnets").index(i).key("dnsServers").index(j);
                if self.subnet_holding(ip).is_none() {
                    out.push((
                        at,
                        Diagnostic::new(format!(
                            "DNS server `{ip}` of vnet `{}` is not an IPv4 address inside a declared subnet",
                            v.name
                        ))
                        .hint("the forwarder VM gets that address in its subnet: declare the subnet that holds it"),
                    ));
                }
            }
        }

        let nsgs: Vec<&str> = self.nsgs.iter().map(|n| n.name.as_str()).collect();
        let tables: Vec<&str> = self.route_tables.iter().map(|r| r.name.as_str()).collect();
        for (i, v) in self.vnets.iter().enumerate() {
            for (j, s) in v.subnets.iter().enumerate() {
                let at = KeyPath::of("vnets").index(i).key("subnets").index(j);
                if let Some(n) = &s.nsg
                    && !nsgs.contains(&n.as_str())
                {
                    out.push((
                        at.clone().key("nsg"),
                        Diagnostic::new(format!(
                            "subnet `{}/{}` names NSG `{n}`, which is not declared",
                            v.name, s.name
                        ))
                        .hint(did_you_mean(n, &nsgs, &declared("NSGs (`nsgs`)", &nsgs))),
                    ));
                }
                if let Some(t) = &s.route_table
                    && !tables.contains(&t.as_str())
                {
                    out.push((
                        at.key("routeTable"),
                        Diagnostic::new(format!(
                            "subnet `{}/{}` names route table `{t}`, which is not declared",
                            v.name, s.name
                        ))
                        .hint(did_you_mean(
                            t,
                            &tables,
                            &declared("route tables (`routeTables`)", &tables),
                        )),
                    ));
                }
            }
        }

        let vnets = self.vnet_names();
        let vnet_ref =
            |what: String, name: &str, at: KeyPath, out: &mut Vec<(KeyPath, Diagnostic)>| {
                if !vnets.contains(&name) {
                    out.push((
                        at,
                        Diagnostic::new(format!("{what} names vnet `{name}`, which is not declared"))
                            .hint(did_you_mean(name, &vnets, &declared("vnets", &vnets))),
                    ));
                }
            };
        for (i, p) in self.peerings.iter().enumerate() {
            let at = KeyPath::of("peerings").index(i).key("between");
            vnet_ref("a peering".into(), &p.between[0], at.clone().index(0), &mut out);
            vnet_ref("a peering".into(), &p.between[1], at.clone().index(1), &mut out);
            if p.between[0] == p.between[1] {
                out.push((at.index(1), Diagnostic::new(format!("a peering joins vnet `{}` to itself", p.between[0]))));
            }
        }
        for (i, z) in self.private_dns_zones.iter().enumerate() {
            for (j, l) in z.links.iter().enumerate() {
                let at = KeyPath::of("privateDnsZones").index(i).key("links").index(j);
                vnet_ref(format!("private DNS zone `{}`", z.name), l, at, &mut out);
            }
        }
        let ips: Vec<&str> = self.public_ips.iter().map(|p| p.name.as_str()).collect();
        for (i, e) in self.cluster.egress_ips.iter().enumerate() {
            if !ips.contains(&e.as_str()) {
                out.push((
                    KeyPath::of("cluster.egressIps").index(i),
                    Diagnostic::new(format!("cluster egress names public IP `{e}`, which is not declared"))
                        .hint(did_you_mean(e, &ips, &declared("public IPs (`publicIps`)", &ips))),
                ));
            }
        }

        let principals = self.principal_names();
        let principals: Vec<&str> = principals.iter().map(String::as_str).collect();
        let apps: Vec<&str> = self.applications.iter().map(|a| a.name.as_str()).collect();
        if let ClusterIdentity::ServicePrincipal { application } = &self.cluster.identity
            && !apps.contains(&application.as_str())
        {
            out.push((
                KeyPath::of("cluster.identity.application"),
                Diagnostic::new(format!("the cluster's service principal `{application}` is not among `applications`"))
                    .hint(did_you_mean(application, &apps, &declared("applications", &apps))),
            ));
        }
        for (i, a) in self.role_assignments.iter().enumerate() {
            let at = KeyPath::of("roleAssignments").index(i);
            if !principals.contains(&a.principal.as_str()) {
                out.push((
                    at.clone().key("principal"),
                    Diagnostic::new(format!("role assignment names principal `{}`, which is unknown", a.principal))
                        .hint(did_you_mean(&a.principal, &principals, "use `kubelet` or `application:NAME`")),
                ));
            }
            if azure_model::authorization::built_in_by_name(&a.role).is_none() {
                let names: Vec<&str> = azure_model::authorization::BUILT_IN_ROLES.iter().map(|r| r.name).collect();
                out.push((
                    at.key("role"),
                    Diagnostic::new(format!("role `{}` is not a built-in role pullproof knows", a.role))
                        .hint(did_you_mean(&a.role, &names, "")),
                ));
            }
        }
        if let Some(secret) = &self.workload.pull_secret
            && let PullSecretSource::Application { application } = &secret.from
            && !apps.contains(&application.as_str())
        {
            out.push((
                KeyPath::of("workload.pullSecret.from.application"),
                Diagnostic::new(format!(
                    "pull secret `{}` uses application `{application}`, which is not declared",
                    secret.name
                ))
                .hint(did_you_mean(application, &apps, &declared("applications", &apps))),
            ));
        }
        let pool_oses: BTreeSet<&str> = self.cluster.pools.iter().map(|p| p.os.as_str()).collect();
        for (k, v) in &self.workload.node_selector {
            if k == "kubernetes.io/os" && !pool_oses.iter().any(|os| os.eq_ignore_ascii_case(v)) {
                out.push((
                    KeyPath::of("workload").key("nodeSelector").key(k.clone()),
                    Diagnostic::new(format!("the workload selects os `{v}` but no node pool runs it")),
                ));
            }
        }
        out
    }
}
