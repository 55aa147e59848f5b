//! HTTPS tests of the emulator over loopback, with clients that trust only its CA.

mod acr;
mod arm;
mod common;
mod identity;
mod operations;
mod registry;
mod serve;
mod validation;
