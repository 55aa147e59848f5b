//! Which route a packet takes out of a subnet, as Azure chooses it: the longest prefix among the
//! subnet's system routes (its VNet's and peered VNets' address spaces, the default route) and
//! its route table's user-defined routes; at equal length the user-defined route wins.
//!
//! ```
//! use azure_model::network::RouteTableProperties;
//! use pulldoctor::detect::route::{Selected, select};
//!
//! let table: RouteTableProperties = serde_json::from_value(serde_json::json!({ "routes": [
//!     { "name": "all-private", "properties": { "addressPrefix": "10.0.0.0/8", "nextHopType": "None" } }
//! ]})).unwrap();
//! let system = ["10.1.0.0/16".to_string(), "0.0.0.0/0".to_string()];
//! // The VNet's own /16 is more specific than the user's /8: the packet stays in the VNet.
//! assert!(matches!(select(&table, &system, "10.1.0.5".parse().unwrap()), Selected::System(_)));
//! assert!(select(&table, &system, "10.2.0.5".parse().unwrap()).drops());
//! ```

use std::net::IpAddr;

use azure_model::network::{Child, RouteProperties, RouteTableProperties, cidr_contains};

/// The route chosen for a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected<'a> {
    /// A user-defined route of the table.
    User(&'a Child<RouteProperties>),
    /// A system route (the prefix it matched).
    System(&'a str),
    /// No route at all: Azure drops it.
    None,
}

impl Selected<'_> {
    /// Whether the packet is dropped (next hop `None`, or no route).
    pub fn drops(&self) -> bool {
        match self {
            Selected::User(r) => r.properties.next_hop_type.eq_ignore_ascii_case("None"),
            Selected::System(_) => false,
            Selected::None => true,
        }
    }
}

/// The route `dst` takes: the longest matching prefix of `table`'s routes and the `system`
/// prefixes, a user-defined route winning a tie.
pub fn select<'a>(table: &'a RouteTableProperties, system: &'a [String], dst: IpAddr) -> Selected<'a> {
    let user = table
        .routes
        .iter()
        .filter(|r| cidr_contains(&r.properties.address_prefix, dst))
        .map(|r| (prefix_len(&r.properties.address_prefix), r))
        .max_by_key(|(len, _)| *len);
    let sys = system.iter().filter(|p| cidr_contains(p, dst)).map(|p| (prefix_len(p), p)).max_by_key(|(len, _)| *len);
    match (user, sys) {
        (Some((u, r)), Some((s, _))) if u >= s => Selected::User(r),
        (_, Some((_, p))) => Selected::System(p),
        (Some((_, r)), None) => Selected::User(r),
        (None, None) => Selected::None,
    }
}

fn prefix_len(cidr: &str) -> u8 {
    cidr.split_once('/').and_then(|(_, l)| l.parse().ok()).unwrap_or(32)
}
