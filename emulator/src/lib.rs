//! # pullproof-emulator
//!
//! A local Azure control plane for pullproof: a real HTTPS server answering the Azure calls the
//! engine and the harness make, with Azure's JSON shapes, api-version checks, status codes and
//! error bodies, and whose state drives the data plane the backends realise.
//!
//! | endpoint | paths |
//! |---|---|
//! | ARM subset | `/subscriptions/...`, `/providers/Microsoft.Authorization/roleDefinitions/...` |
//! | Entra token endpoint | `POST /{tenant}/oauth2/v2.0/token` (and v1 `/oauth2/token`), OpenID discovery |
//! | Microsoft Graph v1.0 | `/v1.0/applications...`, `/v1.0/servicePrincipals...` |
//! | IMDS | `GET /metadata/identity/oauth2/token` (optionally on its own plain-HTTP listener) |
//! | ACR token service | `/oauth2/exchange`, `/oauth2/token` by `Host`, or `/acr/{loginServer}/oauth2/...` |
//!
//! State is kept as ARM resource bodies and exported as an [`azure_model::Inventory`], the same
//! document `pulldoctor` reads offline. Every mutation publishes a new [`DataPlane`] snapshot.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pullproof_emulator::EmulatorError> {
//! use pullproof_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! println!("ARM at {}, trust {} bytes of CA PEM", emulator.base_url, emulator.ca_pem.len());
//! let mut changes = emulator.subscribe();
//! changes.changed().await.ok();
//! let inventory = emulator.export();
//! # let _ = inventory; emulator.shutdown().await; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acr_access;
mod acr_token;
mod arm;
pub mod config;
mod control_plane;
pub mod credential;
pub mod data_plane;
mod directory;
mod emulator;
mod entra;
pub mod error;
mod graph;
mod imds;
mod jwt;
pub mod parsing;
pub mod roles;
pub mod serve;
mod server;
mod state;
pub mod tls;

pub use acr_token::REFRESH_TOKEN_USER;
pub use config::{Clock, EmulatorConfig};
pub use credential::Secret;
pub use data_plane::DataPlane;
pub use emulator::{ClientCredentials, Emulator, RegistryTokenAuth, RunningEmulator};
pub use error::EmulatorError;
pub use serve::{ServeArgs, serve, serve_until};
pub use tls::{CertificateAuthority, IssuedCertificate};
