//! # azure-rest
//!
//! One small client for the Azure REST calls pullproof and pulldoctor make: Azure Resource
//! Manager (`https://management.azure.com`) and Microsoft Graph (`https://graph.microsoft.com`).
//! Base URL, trusted CA and credential are configuration, so the same code talks to Azure and to
//! pullproof's emulator.
//!
//! - bearer tokens from a [`TokenSource`] (client credentials, a fixed token, or an adapter over
//!   `azure_identity`), cached until shortly before expiry;
//! - ARM's `{"error": {"code", "message"}}` envelope mapped to [`RestError::Api`];
//! - `nextLink` paging;
//! - retries with exponential backoff on 429 and 5xx, honouring `Retry-After`; a `POST` (not
//!   idempotent: `addPassword` twice makes two secrets) is retried only when the service refused
//!   it before processing it (429, no connection), never after a timeout or a 5xx ([`Repeat`]);
//! - long-running operations followed to their end (`Azure-AsyncOperation` on any success but
//!   204, `Location` on 202, a non-terminal `provisioningState`; `Retry-After` honoured; polls
//!   only on the client's own host), so a write returns the finished resource and a `Failed`
//!   operation is an error ([`RestError::Operation`]);
//! - a count of the requests sent (diagnosis budgets are stated in requests).

mod client;
mod error;
mod token;

pub use client::{Client, ClientBuilder, Method, Repeat, http_client};
pub use error::RestError;
pub use token::{AccessToken, ClientCredentials, StaticToken, TokenSource};

/// The scope of ARM tokens.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The scope of Microsoft Graph tokens.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Azure's public ARM endpoint.
pub const ARM_ENDPOINT: &str = "https://management.azure.com";
/// Azure's public Graph endpoint.
pub const GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
