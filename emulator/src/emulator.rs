//! Starting and driving an emulator in-process: [`Emulator::start`] and the admin helpers of
//! [`RunningEmulator`] the harness uses (register nodes, mark private-endpoint traffic, record
//! registry content, create applications with secrets).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use azure_model::graph::{Application, PasswordCredential};
use azure_model::{ArmError, Inventory};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{Clock, EmulatorConfig};
use crate::control_plane::{ControlPlane, Settings};
use crate::credential::Secret;
use crate::data_plane::DataPlane;
use crate::directory::DirectoryError;
use crate::error::EmulatorError;
use crate::jwt::TokenSigner;
use crate::state::State;
use crate::tls::{self, CertificateAuthority, IssuedCertificate, ServerCertResolver};
use crate::{arm, server};

/// What a client needs for Entra's client-credentials flow.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The tenant.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The secret.
    pub client_secret: Secret,
    /// The application object's id (what Graph addresses).
    pub application_object_id: String,
    /// The service principal's object id (what role assignments name).
    pub service_principal_object_id: String,
    /// The credential's key id.
    pub key_id: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("service_principal_object_id", &self.service_principal_object_id)
            .finish_non_exhaustive()
    }
}

/// What a registry (distribution's `auth.token` section) needs to trust the emulator's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTokenAuth {
    /// `auth.token.realm`: the emulator's token endpoint for the login server.
    pub realm: String,
    /// `auth.token.service`: the login server.
    pub service: String,
    /// `auth.token.issuer`.
    pub issuer: String,
    /// The PEM to write to the file named by `auth.token.rootcertbundle`.
    pub root_cert_pem: String,
}

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

/// A running emulator. Dropping it stops the listeners; [`RunningEmulator::shutdown`] also waits
/// for open connections to finish.
pub struct RunningEmulator {
    /// `https://127.0.0.1:PORT`: the base of ARM, Graph (`/v1.0`), Entra (`/{tenant}/oauth2/...`),
    /// IMDS (`/metadata/...`) and the ACR token service (`/acr/{loginServer}/oauth2/...`).
    pub base_url: String,
    /// The address the HTTPS listener is bound to.
    pub local_addr: SocketAddr,
    /// The address of the plain-HTTP IMDS listener, when configured.
    pub imds_addr: Option<SocketAddr>,
    /// The test CA (PEM): trust it to talk to the emulator; it also signs the token-signing
    /// certificate, so it is the `rootcertbundle` for distribution's `auth.token`.
    pub ca_pem: String,
    /// The certificate whose key signs registry tokens (PEM; also sent in each token's `x5c`).
    pub token_signing_cert_pem: String,
    operator: ClientCredentials,
    cp: Arc<ControlPlane>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

fn url_host(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("{}:{}", Ipv4Addr::LOCALHOST, addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("[{}]:{}", Ipv6Addr::LOCALHOST, addr.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

fn directory_error(e: DirectoryError) -> EmulatorError {
    match e {
        DirectoryError::NoSuchApplication(a) => EmulatorError::NotFound(format!("application {a}")),
        DirectoryError::NoSuchKey(k) => EmulatorError::NotFound(format!("password credential {k}")),
        DirectoryError::ServicePrincipalExists(a) => {
            EmulatorError::Invalid(format!("app {a} already has a service principal"))
        }
    }
}

/// Creates an application with its service principal and one secret valid two years.
fn new_application(
    state: &mut State,
    display_name: &str,
    now: OffsetDateTime,
) -> Result<ClientCredentials, EmulatorError> {
    let app = state.directory.create_application(display_name, true);
    let cred =
        state.directory.add_password(&app.id, Some("pullproof".into()), None, None, now).map_err(directory_error)?;
    let sp = state
        .directory
        .service_principal_of(&app.app_id)
        .map(|s| s.id.clone())
        .ok_or_else(|| EmulatorError::NotFound(format!("service principal of {}", app.app_id)))?;
    Ok(ClientCredentials {
        tenant_id: state.tenant_id.clone(),
        client_id: app.app_id,
        client_secret: Secret::new(cred.secret_text.unwrap_or_default()),
        application_object_id: app.id,
        service_principal_object_id: sp,
        key_id: cred.key_id.unwrap_or_default(),
    })
}

impl Emulator {
    /// Generates the CA and keys, loads the initial state, binds the listeners and starts serving.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
        tls::install_default_crypto_provider();
        let ca = Arc::new(CertificateAuthority::generate()?);
        let signing = ca.issue_signing_cert()?;
        let signer = TokenSigner::new(&signing.key_der, std::slice::from_ref(&signing.cert_der))
            .map_err(EmulatorError::Crypto)?;

        let mut state = match &config.state {
            Some(inv) => State::import(&config.subscription_id, &config.tenant_id, inv)?,
            None => State::new(&config.subscription_id, &config.tenant_id),
        };
        let operator = new_application(&mut state, "pullproof-emulator-operator", config.clock.now())?;
        state.directory.mark_internal(&operator.client_id);
        state.commit();

        let mut names = config.extra_san.clone();
        names.extend(state.inventory().registries.iter().filter_map(|r| r.properties.login_server.clone()));
        let resolver = ServerCertResolver::new(ca.clone(), &names)?;
        let acceptor = TlsAcceptor::from(tls::server_config(resolver)?);

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let base_url = format!("https://{}", url_host(local_addr));
        let settings = Settings {
            tenant_id: config.tenant_id.clone(),
            subscription_id: config.subscription_id.clone(),
            registry_token_issuer: config.registry_token_issuer.clone(),
            base_url: base_url.clone(),
            async_operations: config.async_operations,
        };
        let cp = Arc::new(ControlPlane::new(settings, config.clock.clone(), signer, ca.clone(), state));
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = vec![server::spawn(listener, Some(acceptor), server::router(cp.clone()), rx.clone())];
        let mut imds_addr = None;
        if let Some(addr) = config.imds_listen {
            let l = TcpListener::bind(addr).await.map_err(|source| EmulatorError::Bind { addr, source })?;
            imds_addr = Some(l.local_addr().map_err(|source| EmulatorError::Bind { addr, source })?);
            tasks.push(server::spawn(l, None, server::imds_router(cp.clone()), rx));
        }
        tracing::info!(%base_url, ?imds_addr, tenant = %config.tenant_id, subscription = %config.subscription_id, "emulator started");
        Ok(RunningEmulator {
            base_url,
            local_addr,
            imds_addr,
            ca_pem: ca.cert_pem().to_string(),
            token_signing_cert_pem: signing.cert_pem,
            operator,
            cp,
            shutdown,
            tasks,
        })
    }
}

impl RunningEmulator {
    /// The tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.cp.settings.tenant_id
    }

    /// The subscription id.
    pub fn subscription_id(&self) -> &str {
        &self.cp.settings.subscription_id
    }

    /// The emulator's clock (move it to expire secrets and tokens).
    pub fn clock(&self) -> &Clock {
        &self.cp.clock
    }

    /// The `iss` of registry access tokens (distribution's `auth.token.issuer`).
    pub fn registry_token_issuer(&self) -> &str {
        &self.cp.settings.registry_token_issuer
    }

    /// The token realm to configure for a registry (`auth.token.realm`), path-routed so it works
    /// without DNS for the login server.
    pub fn acr_token_realm(&self, login_server: &str) -> String {
        format!("{}/acr/{}/oauth2/token", self.base_url, login_server.to_ascii_lowercase())
    }

    /// The `auth.token` settings a registry serving `login_server` needs.
    pub fn registry_token_auth(&self, login_server: &str) -> RegistryTokenAuth {
        RegistryTokenAuth {
            realm: self.acr_token_realm(login_server),
            service: login_server.to_ascii_lowercase(),
            issuer: self.registry_token_issuer().to_string(),
            root_cert_pem: self.ca_pem.clone(),
        }
    }

    /// The emulator's own application: a credential that may call ARM and Graph.
    pub fn operator(&self) -> &ClientCredentials {
        &self.operator
    }

    /// Subscribes to data-plane snapshots (one now, then one per change).
    pub fn subscribe(&self) -> watch::Receiver<Arc<DataPlane>> {
        self.cp.subscribe()
    }

    /// The current data plane.
    pub fn data_plane(&self) -> Arc<DataPlane> {
        self.cp.data_plane()
    }

    /// The state as an inventory document (no secret values).
    pub fn export(&self) -> Inventory {
        (*self.cp.read(|s| s.inventory())).clone()
    }

    /// Registers a node: requests from `ip` are that node's (IMDS answers for `vmss_id`'s
    /// identities).
    pub fn register_node(&self, ip: IpAddr, vmss_id: &str) {
        self.cp.mutate(|s| s.nodes.insert(ip.to_canonical(), vmss_id.to_string()));
    }

    /// Forgets a node.
    pub fn unregister_node(&self, ip: IpAddr) {
        self.cp.mutate(|s| s.nodes.remove(&ip.to_canonical()));
    }

    /// Declares that registry traffic from `ip` arrives through a private endpoint (public
    /// network rules do not apply to it, if the registry has an approved private endpoint).
    pub fn mark_private_source(&self, ip: IpAddr) {
        self.cp.mutate(|s| s.private_sources.insert(ip.to_canonical()));
    }

    /// Undoes [`RunningEmulator::mark_private_source`].
    pub fn unmark_private_source(&self, ip: IpAddr) {
        self.cp.mutate(|s| s.private_sources.remove(&ip.to_canonical()));
    }

    /// Records that `repository` on `login_server` has `tags` (for platforms like `linux/amd64`).
    pub fn push_repository(&self, login_server: &str, repository: &str, tags: &[&str], platforms: &[&str]) {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let platforms: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
        self.cp.mutate(|s| s.push_repository(login_server, repository, &tags, &platforms));
    }

    /// Creates a read-only identity, as engines get: Reader on the subscription (ARM writes and
    /// actions are refused with Azure's `AuthorizationFailed`), Graph read only, and pull on
    /// every registry. Like the operator it is the emulator's own and never exported.
    pub fn create_reader(&self, display_name: &str) -> Result<ClientCredentials, EmulatorError> {
        let now = self.cp.now();
        self.cp.mutate(|s| {
            let creds = new_application(s, display_name, now)?;
            s.directory.mark_reader(&creds.client_id);
            Ok(creds)
        })
    }

    /// An access token this emulator signs but would never issue: the operator's ARM token with
    /// `overrides` merged into its claims (`{"tid": "other"}`, `{"iss": "..."}`, `{"exp": 0}`).
    /// For negative tests: a refusal must come from the claim, not from a bad signature.
    pub fn forge_access_token(&self, overrides: &Value) -> String {
        let object_id = self
            .cp
            .read(|s| s.directory.service_principal_of(&self.operator.client_id).map(|sp| sp.id.clone()))
            .unwrap_or_default();
        let principal =
            crate::entra::Principal { object_id, app_id: self.operator.client_id.clone(), managed_identity: None };
        let issued = crate::entra::issue(&self.cp, &principal, crate::entra::audience::ARM, time::Duration::hours(1));
        let mut claims: Value = crate::jwt::unverified_claims(&issued.token).unwrap_or_default();
        if let (Some(c), Some(o)) = (claims.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                c.insert(k.clone(), v.clone());
            }
        }
        self.cp.signer.sign(&claims, false)
    }

    /// Requests refused to read-only identities so far (`ARM PUT /subscriptions/...: ACTION
    /// (AuthorizationFailed)`), oldest first.
    pub fn refusals(&self) -> Vec<String> {
        self.cp.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Creates an application, its service principal and a secret valid two years.
    pub fn create_application(&self, display_name: &str) -> Result<ClientCredentials, EmulatorError> {
        let now = self.cp.now();
        self.cp.mutate(|s| new_application(s, display_name, now))
    }

    /// Adds a password credential to the application with object id or client id `app`; the
    /// answer carries `secret_text`, which the emulator does not keep.
    pub fn add_password(
        &self,
        app: &str,
        display_name: &str,
        end: Option<OffsetDateTime>,
    ) -> Result<PasswordCredential, EmulatorError> {
        let now = self.cp.now();
        self.cp
            .mutate(|s| s.directory.add_password(app, Some(display_name.to_string()), None, end, now))
            .map_err(directory_error)
    }

    /// Removes a password credential.
    pub fn remove_password(&self, app: &str, key_id: &str) -> Result<(), EmulatorError> {
        self.cp.mutate(|s| s.directory.remove_password(app, key_id)).map_err(directory_error)
    }

    /// Moves a credential's validity window (e.g. to make it expired).
    pub fn set_password_validity(
        &self,
        app: &str,
        key_id: &str,
        start: Option<OffsetDateTime>,
        end: Option<OffsetDateTime>,
    ) -> Result<(), EmulatorError> {
        self.cp.mutate(|s| s.directory.set_password_validity(app, key_id, start, end)).map_err(directory_error)
    }

    /// Sets the end of validity of every password credential of `app` (object id or client id),
    /// e.g. to a past time to make its secrets expired. Returns how many credentials changed.
    pub fn set_secret_expiry(&self, app: &str, end: OffsetDateTime) -> Result<usize, EmulatorError> {
        self.cp.mutate(|s| s.directory.set_secret_expiry(app, end)).map_err(directory_error)
    }

    /// The application with object id or client id `app` (credential metadata only).
    pub fn application(&self, app: &str) -> Option<Application> {
        self.cp.read(|s| s.directory.application(app).cloned())
    }

    /// Issues a TLS server certificate signed by the emulator's CA (e.g. for a registry).
    pub fn issue_server_cert(&self, names: &[String]) -> Result<IssuedCertificate, EmulatorError> {
        self.cp.ca.issue_server_cert(names)
    }

    /// PUTs a resource in-process, through the same pipeline as ARM requests.
    pub fn put_resource(&self, id: &str, body: Value) -> Result<Value, ArmError> {
        arm::put_in_process(&self.cp, id, body)
    }

    /// DELETEs a resource in-process.
    pub fn delete_resource(&self, id: &str) -> Result<(), ArmError> {
        arm::delete_in_process(&self.cp, id)
    }

    /// A resource body as `GET` returns it.
    pub fn resource(&self, id: &str) -> Option<Value> {
        self.cp.read(|s| arm::lookup_any(s, id))
    }

    /// Stops accepting connections and waits (up to a few seconds) for open ones to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        tracing::info!(base_url = %self.base_url, "emulator stopped");
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
