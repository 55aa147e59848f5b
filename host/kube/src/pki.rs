//! A cluster's PKI, generated per run: a CA, the API server's serving certificate, client
//! certificates for the admin, the controller-manager, the scheduler, the API server's kubelet
//! client and each kubelet, and the service-account signing key.
//!
//! Everything is ECDSA P-256, which every Kubernetes component accepts. Keys never leave the
//! run's folder (mode 0600) and never appear in `Debug` output.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A PKI operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters or failed to sign.
    #[error("certificate {what}: {source}")]
    Certificate {
        /// Which certificate.
        what: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// A key or certificate file could not be written.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A certificate and its key, as PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

/// Files of one certificate: `NAME.crt` and `NAME.key` (0600).
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// The key.
    pub key: PathBuf,
}

/// The cluster CA and what it signs.
pub struct ClusterPki {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    sa_key: KeyPair,
}

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPki").finish_non_exhaustive()
    }
}

fn cert_err(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Certificate { what: what.to_string(), source }
}

fn random_serial() -> SerialNumber {
    let mut serial = [0u8; 16];
    // /dev/urandom never blocks once the system is up; a failure leaves a time-based serial.
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut serial)).is_err() {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos().to_be_bytes();
        serial.copy_from_slice(&nanos);
    }
    serial[0] &= 0x7f;
    SerialNumber::from_slice(&serial)
}

fn params_for(common_name: &str, organization: Option<&str>, days: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(days);
    p.serial_number = Some(random_serial());
    p
}

impl ClusterPki {
    /// A new CA and service-account key.
    pub fn generate() -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err("CA key"))?;
        let mut params = params_for("pullproof-kubernetes-ca", None, 3650);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).map_err(cert_err("CA"))?;
        let sa_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err("service-account key"))?;
        Ok(Self { ca_pem: cert.pem(), issuer: Issuer::new(params, key), sa_key })
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client certificate: `CN=user`, `O=group` (Kubernetes reads them as user and group).
    pub fn client(&self, user: &str, group: Option<&str>) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err(user))?;
        let mut p = params_for(user, group, 365);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.issuer).map_err(cert_err(user))?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A serving certificate for DNS names and IP addresses.
    pub fn server(&self, common_name: &str, dns: &[&str], ips: &[IpAddr]) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err(common_name))?;
        let mut p = params_for(common_name, None, 365);
        for d in dns {
            let name = (*d).try_into().map_err(cert_err(common_name))?;
            p.subject_alt_names.push(SanType::DnsName(name));
        }
        p.subject_alt_names.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.issuer).map_err(cert_err(common_name))?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Writes `ca.crt` into `dir`.
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf, PkiError> {
        let path = dir.join("ca.crt");
        write(&path, &self.ca_pem, 0o644)?;
        Ok(path)
    }

    /// Writes the service-account signing key (`sa.key`, private) and its public half (`sa.pub`).
    pub fn write_service_account_key(&self, dir: &Path) -> Result<CertFiles, PkiError> {
        let key = dir.join("sa.key");
        let public = dir.join("sa.pub");
        write(&key, &self.sa_key.serialize_pem(), 0o600)?;
        write(&public, &self.sa_key.public_key_pem(), 0o644)?;
        Ok(CertFiles { cert: public, key })
    }
}

impl Issued {
    /// Writes `NAME.crt` and `NAME.key` (0600) into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<CertFiles, PkiError> {
        let files = CertFiles { cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) };
        write(&files.cert, &self.cert_pem, 0o644)?;
        write(&files.key, &self.key_pem, 0o600)?;
        Ok(files)
    }
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let w = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(path);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        std::io::Write::write_all(&mut f, text.as_bytes())
    };
    w().map_err(|source| PkiError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_and_certificates_carry_their_names() {
        let pki = ClusterPki::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let admin = pki.client("kubernetes-admin", Some("system:masters")).unwrap().write(dir.path(), "admin").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&admin.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let server = pki.server("kube-apiserver", &["kubernetes"], &["127.0.0.1".parse().unwrap()]).unwrap();
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!format!("{server:?}").contains("PRIVATE KEY"));
        let sa = pki.write_service_account_key(dir.path()).unwrap();
        assert!(std::fs::read_to_string(sa.cert).unwrap().contains("PUBLIC KEY"));
    }
}
