//! The emulator's test certificate authority, the server certificates it issues, and the rustls
//! server configuration.
//!
//! One CA signs: the emulator's own server certificates (a default one for `localhost`,
//! `127.0.0.1`, `::1` and configured names, plus one minted on the fly for any other name a
//! client asks for with SNI, such as a registry login server), certificates the harness asks for
//! (e.g. for the registry it runs), and the token-signing certificate whose chain is put in
//! registry tokens' `x5c` header. Trusting [`CertificateAuthority::cert_pem`] therefore trusts
//! all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use tokio_rustls::rustls::{
    self,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use crate::error::EmulatorError;

/// The crypto provider used for TLS and certificates: aws-lc-rs, chosen explicitly.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs aws-lc-rs as the process-wide rustls provider if no provider is installed yet, so
/// that other rustls users in the same process (reqwest, kube) never panic on an ambiguous choice.
pub fn install_default_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: one provider is installed either way.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// A certificate and its private key, PEM and DER encoded.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The PKCS#8 private key (PEM).
    pub key_pem: String,
    /// The certificate (DER).
    pub cert_der: Vec<u8>,
    /// The PKCS#8 private key (DER).
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

/// A throw-away certificate authority (ECDSA P-256), generated at start-up.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority").finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
    let mut serial = [0u8; 16];
    crate::credential::fill_random(&mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "pullproof emulator");
    dn.push(DnType::CommonName, common_name);
    dn
}

impl CertificateAuthority {
    /// Generates a new CA.
    pub fn generate() -> Result<Self, EmulatorError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("pullproof emulator test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        validity(&mut params, 3650);
        let cert = params.self_signed(&key)?;
        Ok(Self { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// The CA certificate (PEM): what clients and the registry's `rootcertbundle` must trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a TLS server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server_cert(&self, names: &[String]) -> Result<IssuedCertificate, EmulatorError> {
        if names.is_empty() {
            return Err(EmulatorError::Invalid("a server certificate needs at least one name".into()));
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name = name(&names[0]);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, 397);
        self.finish(params, key)
    }

    /// Issues the certificate of the token-signing key (a leaf for digital signatures only).
    pub(crate) fn issue_signing_cert(&self) -> Result<IssuedCertificate, EmulatorError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("pullproof emulator token signing");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, 397);
        self.finish(params, key)
    }

    fn finish(&self, params: CertificateParams, key: KeyPair) -> Result<IssuedCertificate, EmulatorError> {
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}

fn certified_key(issued: &IssuedCertificate, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, EmulatorError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.clone()));
    Ok(Arc::new(CertifiedKey::from_der(vec![CertificateDer::from(issued.cert_der.clone())], key, provider)?))
}

/// Picks the server certificate per connection: the default one, or one minted for the SNI name.
pub(crate) struct ServerCertResolver {
    ca: Arc<CertificateAuthority>,
    provider: Arc<CryptoProvider>,
    default_names: Vec<String>,
    default_key: Arc<CertifiedKey>,
    minted: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for ServerCertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertResolver").field("default_names", &self.default_names).finish_non_exhaustive()
    }
}

/// At most this many SNI names get their own certificate; later names get the default one.
const MAX_MINTED: usize = 256;

impl ServerCertResolver {
    pub(crate) fn new(ca: Arc<CertificateAuthority>, extra_names: &[String]) -> Result<Self, EmulatorError> {
        let provider = provider();
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        for n in extra_names {
            if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
                names.push(n.clone());
            }
        }
        let default_key = certified_key(&ca.issue_server_cert(&names)?, &provider)?;
        let default_names = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        Ok(Self { ca, provider, default_names, default_key, minted: Mutex::new(HashMap::new()) })
    }

    fn for_name(&self, sni: &str) -> Arc<CertifiedKey> {
        let sni = sni.to_ascii_lowercase();
        if self.default_names.contains(&sni) {
            return self.default_key.clone();
        }
        let mut minted = self.minted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = minted.get(&sni) {
            return k.clone();
        }
        if minted.len() >= MAX_MINTED {
            return self.default_key.clone();
        }
        match self.ca.issue_server_cert(std::slice::from_ref(&sni)).and_then(|c| certified_key(&c, &self.provider)) {
            Ok(k) => {
                tracing::debug!(name = %sni, "minted a server certificate for an SNI name");
                minted.insert(sni, k.clone());
                k
            }
            Err(e) => {
                tracing::warn!(name = %sni, error = %e, "cannot mint a certificate; using the default one");
                self.default_key.clone()
            }
        }
    }
}

impl ResolvesServerCert for ServerCertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match hello.server_name() {
            Some(sni) => self.for_name(sni),
            None => self.default_key.clone(),
        })
    }
}

/// The rustls server configuration (HTTP/1.1 over TLS 1.2/1.3, aws-lc-rs provider).
pub(crate) fn server_config(resolver: ServerCertResolver) -> Result<Arc<rustls::ServerConfig>, EmulatorError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
