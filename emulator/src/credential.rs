//! Secrets the emulator hands out (client secrets, registry admin passwords) and the salted
//! hashes it keeps of them.
//!
//! A [`Secret`] never prints its value (`Debug` and `Display` are redacted), so it can sit in
//! structs that are traced. Client secrets are stored only as salted hashes; registry admin
//! passwords must be kept in memory because ARM's `listCredentials` returns them, but they are
//! never exported.

use std::fmt;

use aws_lc_rs::{constant_time, digest, rand};

/// A secret value: redacted in `Debug`/`Display`, compared by value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A fresh Entra-style client secret (40 characters, with the `8Q~` marker Entra uses).
    pub(crate) fn generate_client_secret() -> Self {
        let body = random_text(37, b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.~");
        canary::record(Self(format!("{}8Q~{}", &body[..3], &body[3..])))
    }

    /// A fresh registry admin password (52 characters of the base64 alphabet, as ACR's are).
    pub(crate) fn generate_admin_password() -> Self {
        canary::record(Self(random_text(52, b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/")))
    }
}

/// The leak canary: with `PULLPROOF_CANARY_FILE` set, every secret and token the emulator
/// creates (client secrets, admin passwords, every JWT it signs: access, refresh and registry
/// tokens) is appended to that file, one per line, so that a test can search everything else
/// the run wrote for any of them. Off (and free) otherwise.
pub(crate) mod canary {
    use std::io::Write;
    use std::sync::{LazyLock, Mutex};

    static FILE: LazyLock<Option<Mutex<std::fs::File>>> = LazyLock::new(|| {
        let path = std::env::var_os("PULLPROOF_CANARY_FILE")?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok()?;
        Some(Mutex::new(file))
    });

    /// Records `value` (a secret or a token) and hands it back.
    pub(crate) fn record<T: AsRef<str>>(value: T) -> T {
        if let Some(file) = FILE.as_ref()
            && let Ok(mut f) = file.lock()
        {
            let _ = writeln!(f, "{}", value.as_ref());
        }
        value
    }
}

impl AsRef<str> for Secret {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A salted SHA-256 hash of a secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretHash {
    salt: [u8; 16],
    hash: Vec<u8>,
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    /// Hashes `secret` with a fresh random salt.
    pub(crate) fn of(secret: &str) -> Self {
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        Self { salt, hash: digest_with(&salt, secret) }
    }

    /// Whether `candidate` is the secret that was hashed (constant-time comparison).
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        constant_time::verify_slices_are_equal(&digest_with(&self.salt, candidate), &self.hash).is_ok()
    }
}

fn digest_with(salt: &[u8], secret: &str) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt);
    ctx.update(secret.as_bytes());
    ctx.finish().as_ref().to_vec()
}

/// Fills `buf` from the system CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // The system RNG only fails when the OS has no entropy source at all; there is nothing
    // sensible to do then but stop.
    rand::fill(buf).expect("the operating system's random number generator failed");
}

/// `len` characters drawn uniformly from `alphabet` (whose length must divide 256 or be
/// smaller than it; rejection sampling keeps the draw uniform).
fn random_text(len: usize, alphabet: &[u8]) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf);
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_only_the_secret() {
        let s = Secret::generate_client_secret();
        let h = SecretHash::of(s.expose());
        assert!(h.matches(s.expose()));
        assert!(!h.matches("nope"));
        assert_eq!(s.expose().len(), 40);
        assert_eq!(&s.expose()[3..6], "8Q~");
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(Secret::generate_admin_password().expose().len(), 52);
    }
}
