//! The crate's error type.

use std::io;

/// Everything that can go wrong while building, driving or tearing down the VNets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external command (`ip`, `nft`, ...) ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, including any script fed on standard input.
        command: String,
        /// How it ended (exit code or signal).
        status: String,
        /// What it wrote on standard error (trimmed).
        stderr: String,
    },
    /// An external command could not be started at all.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start.
        #[source]
        source: io::Error,
    },
    /// A system call made for, or inside, a network namespace failed.
    #[error("{op} in network namespace {ns}: {source}")]
    Namespace {
        /// The namespace's name.
        ns: String,
        /// What was attempted (e.g. `setns`, `bind 10.0.1.4:443`).
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A namespace name or sweep prefix this crate refuses (it must start with `pp-` and be a plain file name).
    #[error("invalid namespace name or prefix {0:?}: it must start with `pp-` and use only [a-z0-9-]")]
    InvalidName(String),
    /// The topology spec or a policy is inconsistent or uses addresses outside the allowed ranges.
    #[error("invalid topology: {0}")]
    InvalidSpec(String),
    /// A text could not be parsed as an IPv4 CIDR.
    #[error("invalid IPv4 CIDR {0:?}")]
    InvalidCidr(String),
    /// Any other I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn ns(ns: &str, op: impl Into<String>, source: io::Error) -> Self {
        Error::Namespace { ns: ns.to_owned(), op: op.into(), source }
    }
}
