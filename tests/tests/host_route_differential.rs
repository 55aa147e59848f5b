//! The world's routing and the engine's route reasoning are written apart, so a bug in one cannot
//! hide in the other. This holds them to each other: generated route tables are installed in a
//! real router namespace, where Linux's longest-prefix match decides each packet's fate, and
//! pulldoctor's `detect::route::select` must predict every fate.

use std::net::{IpAddr, Ipv4Addr};

use azure_model::network::RouteTableProperties;
use pullproof_host_net::{Ipv4Net, Policy, RouteEntry, RouteFate, RouteOrigin, Topology, TopologySpec};

mod rng;
use rng::Rng;

const HOPS: [&str; 5] = ["None", "VnetLocal", "VirtualAppliance", "Internet", "VirtualNetworkGateway"];

/// Prefixes near the world's address plan (10.0/16 hub, 10.1/16 node VNet), so that user and
/// system routes overlap in every way: shorter, longer and equal.
fn prefix(rng: &mut Rng) -> Ipv4Net {
    let len = [0u8, 8, 12, 16, 16, 20, 24, 24, 28, 32][rng.below(10) as usize];
    let addr = Ipv4Addr::new(10, rng.below(3) as u8, rng.below(4) as u8, rng.below(256) as u8);
    Ipv4Net::new(addr, len).unwrap().trunc()
}

fn destination(rng: &mut Rng) -> Ipv4Addr {
    match rng.below(4) {
        0 => Ipv4Addr::new(198, 51, 100, rng.below(256) as u8),
        _ => Ipv4Addr::new(10, rng.below(3) as u8, rng.below(4) as u8, rng.below(256) as u8),
    }
}

/// What the kernel does with a packet arriving from the node for `dst`: dropped by a blackhole
/// route? A forwarding lookup that ends on a blackhole route answers EINVAL ("Invalid
/// argument"); one that falls through (`throw`) to a table with no route for an address this
/// world does not host answers ENETUNREACH, which is not the route table's doing.
fn kernel_drops(topo: &Topology, node: Ipv4Addr, dst: Ipv4Addr) -> bool {
    let out = topo.router().ip(&["route", "get", &dst.to_string(), "from", &node.to_string(), "iif", "n0"]);
    match out {
        Ok(_) => false,
        Err(e) if e.to_string().contains("Invalid argument") => true,
        Err(e) if e.to_string().contains("Network is unreachable") => false,
        Err(e) => panic!("ip route get {dst}: {e}"),
    }
}

#[test]
fn host_the_engine_predicts_what_the_kernel_does_with_every_generated_route_table() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        assert!(
            std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() == Ok("1"),
            "needs root (or PULLPROOF_SKIP_HOST_TESTS=1)"
        );
        return;
    }
    let spec = TopologySpec::example();
    let runid = pullproof_host_net::new_runid();
    let topo = Topology::build(&runid, &spec).unwrap();
    let node = spec.node.address.addr();
    let system: Vec<String> = ["10.1.0.0/16", "10.0.0.0/16", "0.0.0.0/0"].iter().map(|s| s.to_string()).collect();
    let (tables, per_table) = (60, 25);
    let mut compared = 0;
    for seed in 1..=tables {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let mut routes = Vec::new();
        let mut table = Vec::new();
        for i in 0..(1 + rng.below(6)) {
            let p = prefix(&mut rng);
            if routes.iter().any(|r: &RouteEntry| r.prefix == p) {
                continue; // one route per prefix, as a route table allows
            }
            let hop = HOPS[rng.below(HOPS.len() as u64) as usize];
            let fate = if hop == "None" { RouteFate::Drop } else { RouteFate::Forward };
            routes.push(RouteEntry { prefix: p, fate, origin: RouteOrigin::User });
            table.push(serde_json::json!({ "name": format!("r{i}"), "properties": { "addressPrefix": p.to_string(), "nextHopType": hop } }));
        }
        let mut all: Vec<RouteEntry> = system
            .iter()
            .map(|s| {
                let (a, l) = s.split_once('/').unwrap();
                RouteEntry {
                    prefix: Ipv4Net::new(a.parse().unwrap(), l.parse().unwrap()).unwrap(),
                    fate: RouteFate::Forward,
                    origin: RouteOrigin::System,
                }
            })
            .collect();
        all.extend(routes.iter().copied());
        topo.apply(&Policy { routes: all, ..Policy::default() }).unwrap();
        let table: RouteTableProperties = serde_json::from_value(serde_json::json!({ "routes": table })).unwrap();
        for _ in 0..per_table {
            let dst = destination(&mut rng);
            let kernel = kernel_drops(&topo, node, dst);
            let engine = pulldoctor::detect::route::select(&table, &system, IpAddr::V4(dst)).drops();
            assert_eq!(
                engine, kernel,
                "seed {seed}, destination {dst}: engine drops={engine}, kernel drops={kernel}; routes {table:?}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, tables * per_table);
    topo.teardown().unwrap();
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
