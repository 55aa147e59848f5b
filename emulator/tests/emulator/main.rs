//! HTTPS tests of the emulator over loopback, with clients that trust only its CA.

mod acr;
mod arm;
mod auth_refusals;
mod common;
mod identity;
mod operations;
mod registry;
mod serve;
mod validation;
