//! Baselines: a healthy world, declared once (`fixtures/baselines/NAME.yaml`).
//!
//! A baseline names Azure resources by their short names (`aks-vnet`, `pullproofacr`); the
//! harness turns it into ARM PUTs ([`crate::arm`]) and Kubernetes objects. Every reference is
//! checked by [`Baseline::check`], so a fault or a link can never point at something that does
//! not exist.

mod model;

pub use model::*;

use std::collections::BTreeSet;

use crate::diagnostic::{Diagnostic, closest};

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

    /// Checks every cross-reference, returning one diagnostic per broken one.
    pub fn check(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let rgs: BTreeSet<&str> = self.resource_groups.iter().map(String::as_str).collect();
        let mut rg = |what: &str, name: &str| {
            if !rgs.contains(name) {
                out.push(
                    Diagnostic::new(format!(
                        "{what} names resource group `{name}`, which the baseline does not declare"
                    ))
                    .hint(
                        closest(name, rgs.iter().copied())
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| "add it to `resourceGroups`".into()),
                    ),
                );
            }
        };
        rg("cluster", &self.cluster.resource_group);
        rg("registry", &self.registry.resource_group);
        for v in &self.vnets {
            rg(&format!("vnet `{}`", v.name), &v.resource_group);
        }
        for z in &self.private_dns_zones {
            rg(&format!("private DNS zone `{}`", z.name), &z.resource_group);
        }
        for n in &self.nsgs {
            rg(&format!("NSG `{}`", n.name), &n.resource_group);
        }
        for r in &self.route_tables {
            rg(&format!("route table `{}`", r.name), &r.resource_group);
        }
        for p in &self.public_ips {
            rg(&format!("public IP `{}`", p.name), &p.resource_group);
        }

        let subnets = self.subnet_paths();
        let vnets = self.vnet_names();
        let subnet_ref = |what: String, path: &str, out: &mut Vec<Diagnostic>| {
            if !subnets.iter().any(|s| s == path) {
                out.push(
                    Diagnostic::new(format!(
                        "{what} names subnet `{path}`, which no vnet declares (write it as VNET/SUBNET)"
                    ))
                    .hint(
                        closest(path, subnets.iter().map(String::as_str))
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_default(),
                    ),
                );
            }
        };
        for p in &self.cluster.pools {
            subnet_ref(format!("node pool `{}`", p.name), &p.subnet, &mut out);
        }
        if let Some(pe) = &self.registry.private_endpoint {
            subnet_ref("the registry's private endpoint".into(), &pe.subnet, &mut out);
        }
        let nsgs: Vec<&str> = self.nsgs.iter().map(|n| n.name.as_str()).collect();
        let tables: Vec<&str> = self.route_tables.iter().map(|r| r.name.as_str()).collect();
        for v in &self.vnets {
            for s in &v.subnets {
                if let Some(n) = &s.nsg
                    && !nsgs.contains(&n.as_str())
                {
                    out.push(Diagnostic::new(format!(
                        "subnet `{}/{}` names NSG `{n}`, which is not declared",
                        v.name, s.name
                    )));
                }
                if let Some(t) = &s.route_table
                    && !tables.contains(&t.as_str())
                {
                    out.push(Diagnostic::new(format!(
                        "subnet `{}/{}` names route table `{t}`, which is not declared",
                        v.name, s.name
                    )));
                }
            }
        }
        let vnet_ref = |what: String, name: &str, out: &mut Vec<Diagnostic>| {
            if !vnets.contains(&name) {
                out.push(Diagnostic::new(format!("{what} names vnet `{name}`, which is not declared")).hint(
                    closest(name, vnets.iter().copied()).map(|c| format!("did you mean `{c}`?")).unwrap_or_default(),
                ));
            }
        };
        for p in &self.peerings {
            vnet_ref("a peering".into(), &p.between[0], &mut out);
            vnet_ref("a peering".into(), &p.between[1], &mut out);
            if p.between[0] == p.between[1] {
                out.push(Diagnostic::new(format!("a peering joins vnet `{}` to itself", p.between[0])));
            }
        }
        for z in &self.private_dns_zones {
            for l in &z.links {
                vnet_ref(format!("private DNS zone `{}`", z.name), l, &mut out);
            }
        }
        let ips: Vec<&str> = self.public_ips.iter().map(|p| p.name.as_str()).collect();
        for e in &self.cluster.egress_ips {
            if !ips.contains(&e.as_str()) {
                out.push(Diagnostic::new(format!("cluster egress names public IP `{e}`, which is not declared")));
            }
        }
        let principals = self.principal_names();
        let apps: Vec<&str> = self.applications.iter().map(|a| a.name.as_str()).collect();
        if let ClusterIdentity::ServicePrincipal { application } = &self.cluster.identity
            && !apps.contains(&application.as_str())
        {
            out.push(Diagnostic::new(format!(
                "the cluster's service principal `{application}` is not among `applications`"
            )));
        }
        for a in &self.role_assignments {
            if !principals.contains(&a.principal) {
                out.push(
                    Diagnostic::new(format!("role assignment names principal `{}`, which is unknown", a.principal))
                        .hint(
                            closest(&a.principal, principals.iter().map(String::as_str))
                                .map(|c| format!("did you mean `{c}`?"))
                                .unwrap_or_else(|| "use `kubelet` or `application:NAME`".into()),
                        ),
                );
            }
            if azure_model::authorization::built_in_by_name(&a.role).is_none() {
                let names = azure_model::authorization::BUILT_IN_ROLES.iter().map(|r| r.name);
                out.push(
                    Diagnostic::new(format!("role `{}` is not a built-in role pullproof knows", a.role))
                        .hint(closest(&a.role, names).map(|c| format!("did you mean `{c}`?")).unwrap_or_default()),
                );
            }
        }
        if let Some(secret) = &self.workload.pull_secret
            && let PullSecretSource::Application { application } = &secret.from
            && !apps.contains(&application.as_str())
        {
            out.push(Diagnostic::new(format!(
                "pull secret `{}` uses application `{application}`, which is not declared",
                secret.name
            )));
        }
        let pool_oses: BTreeSet<&str> = self.cluster.pools.iter().map(|p| p.os.as_str()).collect();
        for (k, v) in &self.workload.node_selector {
            if k == "kubernetes.io/os" && !pool_oses.iter().any(|os| os.eq_ignore_ascii_case(v)) {
                out.push(Diagnostic::new(format!("the workload selects os `{v}` but no node pool runs it")));
            }
        }
        out
    }
}
