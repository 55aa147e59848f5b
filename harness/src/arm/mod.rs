//! Azure as requests: a baseline becomes ARM and Graph calls, and so does every fault.
//!
//! Everything here is pure: [`provision`] and [`mutation`] return [`Request`]s (with
//! placeholders for values only Azure knows, such as object ids, bound from earlier answers by
//! [`Capture`]s). [`exec`] sends them with [`azure_rest`]. The same requests provision the
//! emulator on the host backend and a sandbox subscription on the aks backend, and
//! `pullproof plan --backend aks --requests` prints them.

pub mod exec;
pub mod ids;
pub mod mutation;
pub mod proposal;
pub mod provision;
pub mod request;

pub use exec::{Bindings, ExecError, Executor};
pub use ids::World;
pub use request::{Capture, Edit, Request, Service};
