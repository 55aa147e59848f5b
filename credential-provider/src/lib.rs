//! # acr-credential-provider
//!
//! A kubelet image credential provider plugin (`credentialprovider.kubelet.k8s.io/v1`) that
//! does what AKS's `acr-credential-provider` does:
//!
//! ```text
//! kubelet --stdin-->  {"kind":"CredentialProviderRequest","image":"myacr.azurecr.io/app",...}
//!         acr-credential-provider /etc/kubernetes/azure.json
//!           managed identity:  GET  IMDS /metadata/identity/oauth2/token (resource = ACR)
//!                              GET  https://myacr.azurecr.io/v2/            (Bearer challenge)
//!                              POST https://myacr.azurecr.io/oauth2/exchange -> refresh_token
//!           service principal: appId + secret as they are
//! kubelet <-stdout--  {"kind":"CredentialProviderResponse","cacheKeyType":"Registry",
//!                      "cacheDuration":"5m0s","auth":{"myacr.azurecr.io":{...},"*.azurecr.*":{"username":"","password":""}}}
//! ```
//!
//! On any failure the binary writes one line to stderr (never a token or secret) and exits with
//! status 1; the kubelet then pulls without the plugin's credentials.
//!
//! Environment: `SSL_CERT_FILE` (PEM roots replacing the built-in ones),
//! `ACR_CREDENTIAL_PROVIDER_IMDS_ENDPOINT` (default `http://169.254.169.254`) and, for tests,
//! `ACR_CREDENTIAL_PROVIDER_CONNECT_TO` (see [`client::CONNECT_TO_ENV`]).
//!
//! Modules: [`protocol`] (the JSON types), [`config`] (`azure.json`), [`registry`] (which
//! images are ACR's), [`client`] (HTTP), [`provider`] (the answer), [`error`].

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod error;
pub mod protocol;
pub mod provider;
pub mod registry;

pub use error::ProviderError;
pub use provider::{Provider, run};
