//! Backends: where a scenario's world is realised.
//!
//! - [`host`]: real containerd, a real registry, network namespaces as VNets and the emulator,
//!   on this Linux machine (root). What CI runs on every commit.

pub mod host;
