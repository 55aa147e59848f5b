//! The emulator's whole state: ARM resources, the Entra directory, secrets that must stay in
//! memory, node registrations, and registry content; plus its export as an [`Inventory`].

pub(crate) mod derived;
pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use azure_model::Inventory;
use azure_model::container_registry::{RegistryContent, Repository};
use azure_model::inventory::types;
use serde_json::Value;

use crate::credential::Secret;
use crate::directory::Directory;
use crate::error::EmulatorError;
use store::{ResourceStore, id_of, key};

/// The two admin passwords of a registry (`password`, `password2`).
pub(crate) type AdminPasswords = [Secret; 2];

/// Everything the emulator knows.
#[derive(Debug)]
pub(crate) struct State {
    pub subscription_id: String,
    pub tenant_id: String,
    pub store: ResourceStore,
    pub directory: Directory,
    /// Admin passwords by lower-cased registry id (returned by `listCredentials`, never exported).
    pub admin_passwords: HashMap<String, AdminPasswords>,
    /// Cluster service principal secrets by lower-cased cluster id (the nodes' cloud config needs
    /// them; never returned by ARM, never exported).
    pub cluster_secrets: HashMap<String, Secret>,
    /// Node source address -> scale set id.
    pub nodes: BTreeMap<IpAddr, String>,
    /// Source addresses whose traffic arrives through a private endpoint.
    pub private_sources: BTreeSet<IpAddr>,
    /// Repositories and tags per login server.
    pub registry_content: Vec<RegistryContent>,
    inventory: Arc<Inventory>,
}

impl State {
    pub fn new(subscription_id: &str, tenant_id: &str) -> Self {
        let mut s = Self {
            subscription_id: subscription_id.to_string(),
            tenant_id: tenant_id.to_string(),
            store: ResourceStore::default(),
            directory: Directory::default(),
            admin_passwords: HashMap::new(),
            cluster_secrets: HashMap::new(),
            nodes: BTreeMap::new(),
            private_sources: BTreeSet::new(),
            registry_content: Vec::new(),
            inventory: Arc::new(Inventory::default()),
        };
        s.commit();
        s
    }

    /// Loads an exported inventory. Resources are taken as they are; subnets and peerings listed
    /// on their own are folded into their VNet; registries get fresh admin passwords (passwords
    /// are never exported), and imported client secrets cannot be used (only their metadata is
    /// exported).
    pub fn import(subscription_id: &str, tenant_id: &str, inv: &Inventory) -> Result<Self, EmulatorError> {
        let mut s = Self::new(subscription_id, tenant_id);
        let mut values: Vec<Value> = Vec::new();
        fn all<P: serde::Serialize>(out: &mut Vec<Value>, list: &[azure_model::Resource<P>]) {
            out.extend(list.iter().filter_map(|r| serde_json::to_value(r).ok()));
        }
        all(&mut values, &inv.resource_groups);
        all(&mut values, &inv.managed_clusters);
        all(&mut values, &inv.registries);
        all(&mut values, &inv.role_assignments);
        all(&mut values, &inv.role_definitions);
        all(&mut values, &inv.virtual_networks);
        all(&mut values, &inv.private_dns_zones);
        all(&mut values, &inv.virtual_network_links);
        all(&mut values, &inv.a_record_sets);
        all(&mut values, &inv.private_endpoints);
        all(&mut values, &inv.network_security_groups);
        all(&mut values, &inv.route_tables);
        all(&mut values, &inv.public_ip_addresses);
        all(&mut values, &inv.virtual_machine_scale_sets);
        values.extend(inv.other.iter().cloned());
        for v in values {
            let id = id_of(&v);
            if azure_model::ResourceId::parse(id).is_err() {
                return Err(EmulatorError::State(format!("a resource has no usable id (`{id}`)")));
            }
            s.store.insert(v);
        }
        let mut children: Vec<(Value, &str)> = Vec::new();
        children.extend(inv.subnets.iter().filter_map(|r| serde_json::to_value(r).ok()).map(|v| (v, "subnets")));
        children.extend(
            inv.peerings.iter().filter_map(|r| serde_json::to_value(r).ok()).map(|v| (v, "virtualNetworkPeerings")),
        );
        for (child, array) in children {
            let id = id_of(&child).to_string();
            let parent = id.rsplitn(3, '/').nth(2).unwrap_or_default().to_string();
            let Some(parent) = s.store.get_mut(&parent) else {
                return Err(EmulatorError::State(format!("`{id}` is listed but its VNet is not")));
            };
            derived::upsert_child(parent, array, child);
        }
        for id in s.store.ids_of_type(types::REGISTRY) {
            s.ensure_admin_passwords(&id);
        }
        s.directory = Directory::import(&inv.applications, &inv.service_principals);
        s.registry_content = inv.registry_content.clone();
        s.commit();
        Ok(s)
    }

    /// Makes sure registry `id` has admin passwords.
    pub fn ensure_admin_passwords(&mut self, registry_id: &str) {
        self.admin_passwords
            .entry(key(registry_id))
            .or_insert_with(|| [Secret::generate_admin_password(), Secret::generate_admin_password()]);
    }

    /// Recomputes derived fields and the inventory view. Called after every mutation.
    pub fn commit(&mut self) {
        derived::refresh(&mut self.store);
        let removed: Vec<String> = self.admin_passwords.keys().filter(|k| !self.store.contains(k)).cloned().collect();
        for k in removed {
            self.admin_passwords.remove(&k);
        }
        self.inventory = Arc::new(self.build_inventory());
    }

    /// The current inventory view (resources as `GET` returns them).
    pub fn inventory(&self) -> Arc<Inventory> {
        self.inventory.clone()
    }

    fn build_inventory(&self) -> Inventory {
        let mut inv = Inventory {
            subscription_id: Some(self.subscription_id.clone()),
            tenant_id: Some(self.tenant_id.clone()),
            applications: self.directory.exported_applications(),
            service_principals: self.directory.exported_service_principals(),
            registry_content: self.registry_content.clone(),
            ..Default::default()
        };
        for (i, v) in self.store.values().enumerate() {
            if let Err(e) = inv.add_value(i, v.clone()) {
                tracing::warn!(error = %e, "a stored resource does not fit the inventory model");
            }
        }
        inv
    }

    /// Records repositories and tags for `login_server` (tags are merged).
    pub fn push_repository(&mut self, login_server: &str, repository: &str, tags: &[String], platforms: &[String]) {
        let idx = match self.registry_content.iter().position(|c| c.login_server.eq_ignore_ascii_case(login_server)) {
            Some(i) => i,
            None => {
                self.registry_content
                    .push(RegistryContent { login_server: login_server.to_ascii_lowercase(), repositories: vec![] });
                self.registry_content.len() - 1
            }
        };
        let content = &mut self.registry_content[idx];
        let repo = match content.repositories.iter().position(|r| r.name == repository) {
            Some(i) => &mut content.repositories[i],
            None => {
                content.repositories.push(Repository { name: repository.to_string(), ..Default::default() });
                content.repositories.last_mut().expect("just pushed")
            }
        };
        for t in tags {
            if !repo.tags.contains(t) {
                repo.tags.push(t.clone());
            }
        }
        for p in platforms {
            if !repo.platforms.contains(p) {
                repo.platforms.push(p.clone());
            }
        }
    }
}
