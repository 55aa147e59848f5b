//! Compact JWS (JWT) signing and verification with ES256, on the same crypto provider rustls
//! uses (aws-lc-rs).
//!
//! Every token the emulator issues (Entra access tokens, ACR refresh and access tokens) is signed
//! by one [`TokenSigner`]. Registry access tokens carry the signing certificate in the `x5c`
//! header (standard base64 DER, leaf first), which is how distribution's `auth.token` finds and
//! trusts the key (it verifies the chain against its `rootcertbundle`).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Serialize, de::DeserializeOwned};

/// The claims of a JWT, not verified (for re-signing in negative tests).
pub(crate) fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or not JSON.
    #[error("the token is malformed")]
    Malformed,
    /// Not ES256, or the signature does not verify with the emulator's key.
    #[error("the token signature is invalid")]
    BadSignature,
}

/// Signs and verifies ES256 JWTs with the emulator's token-signing key.
pub(crate) struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
    x5c: Vec<String>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer for a PKCS#8 P-256 key whose certificate chain (DER, leaf first) is `chain`.
    pub(crate) fn new(pkcs8: &[u8], chain: &[Vec<u8>]) -> Result<Self, String> {
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| format!("token-signing key rejected: {e}"))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.public_key().as_ref());
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        Ok(Self { key, kid, x5c: chain.iter().map(|c| STANDARD.encode(c)).collect() })
    }

    /// Signs `claims`; with `with_x5c` the header carries the certificate chain.
    pub(crate) fn sign<C: Serialize>(&self, claims: &C, with_x5c: bool) -> String {
        let mut header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        if with_x5c {
            header["x5c"] = serde_json::json!(self.x5c);
        }
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let input = format!("{header}.{claims}");
        // ECDSA signing only fails on an internal library error; an empty signature then makes
        // the token unverifiable rather than crashing the server.
        let sig =
            self.key.sign(&SystemRandom::new(), input.as_bytes()).map(|s| s.as_ref().to_vec()).unwrap_or_default();
        crate::credential::canary::record(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Verifies the signature of `token` and decodes its claims (claims are checked by callers).
    pub(crate) fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwtError::Malformed);
        };
        let header: serde_json::Value = decode_json(h)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("ES256") {
            return Err(JwtError::BadSignature);
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
        let public = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        public.verify(format!("{h}.{c}").as_bytes(), &sig).map_err(|_| JwtError::BadSignature)?;
        decode_json(c)
    }

    /// The public key as a JWK (for the OpenID `jwks_uri`).
    pub(crate) fn jwk(&self) -> serde_json::Value {
        let point = self.key.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y), "x5c": self.x5c,
        })
    }
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        TokenSigner::new(&key.serialize_der(), &[vec![1, 2, 3]]).unwrap()
    }

    #[test]
    fn round_trip_and_tamper() {
        let s = signer();
        let t = s.sign(&serde_json::json!({"sub": "me"}), true);
        let claims: serde_json::Value = s.verify(&t).unwrap();
        assert_eq!(claims["sub"], "me");
        let header = peek_header(&t);
        assert_eq!(header["x5c"][0], "AQID");
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
        parts[1] = &forged;
        assert_eq!(s.verify::<serde_json::Value>(&parts.join(".")), Err(JwtError::BadSignature));
        assert_eq!(s.verify::<serde_json::Value>("a.b"), Err(JwtError::Malformed));
        assert!(signer().verify::<serde_json::Value>(&t).is_err(), "another key must not verify");
    }

    fn peek_header(t: &str) -> serde_json::Value {
        decode_json(t.split('.').next().unwrap()).unwrap()
    }
}
