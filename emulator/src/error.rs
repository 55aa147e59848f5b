//! Errors of the emulator's library API (start-up, admin helpers, `serve`).
//!
//! Errors answered to HTTP clients are not Rust errors: each protocol module renders its own
//! wire envelope (ARM, Graph, Entra, IMDS, ACR).

use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong starting, driving or stopping the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Generating or using a certificate or key failed.
    #[error("certificate or key error: {0}")]
    Crypto(String),
    /// The initial state could not be loaded.
    #[error("the initial state is not usable: {0}")]
    State(String),
    /// An inventory document could not be read.
    #[error(transparent)]
    Inventory(#[from] azure_model::inventory::InventoryError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An admin helper referred to something that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// An admin helper got an unusable argument.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl From<rcgen::Error> for EmulatorError {
    fn from(e: rcgen::Error) -> Self {
        Self::Crypto(e.to_string())
    }
}

impl From<tokio_rustls::rustls::Error> for EmulatorError {
    fn from(e: tokio_rustls::rustls::Error) -> Self {
        Self::Crypto(e.to_string())
    }
}
