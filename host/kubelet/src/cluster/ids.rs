//! Names, uids and hashes the way the API server and controllers make them.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// `k8s.io/apimachinery/pkg/util/rand` alphabet (no vowels, no confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A deterministic generator (splitmix64) for uids and name suffixes.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    state: u64,
}

impl Ids {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random (version 4 shaped) uid.
    pub(crate) fn uid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        let hex = format!("{a:016x}{b:016x}");
        format!(
            "{}-{}-4{}-{}{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            ["8", "9", "a", "b"][(b >> 62) as usize],
            &hex[17..20],
            &hex[20..32]
        )
    }

    /// `len` characters of the name-suffix alphabet (`generateName`'s 5 characters).
    pub(crate) fn suffix(&mut self, len: usize) -> String {
        (0..len).map(|_| ALPHANUMS[(self.next_u64() % ALPHANUMS.len() as u64) as usize] as char).collect()
    }
}

/// FNV-1a, 32 bits.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, b| (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// `rand.SafeEncodeString`: each byte mapped into the alphabet.
fn safe_encode(text: &str) -> String {
    text.bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// The `pod-template-hash` of a template (FNV-32a of the template, encoded like the
/// deployment controller encodes it).
pub(crate) fn template_hash(template: &PodTemplateSpec, collision_count: u32) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if collision_count > 0 {
        bytes.extend_from_slice(&collision_count.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_kubernetes_ids() {
        let mut ids = Ids::new(7);
        let uid = ids.uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4');
        let suffix = ids.suffix(5);
        assert_eq!(suffix.len(), 5);
        assert!(suffix.bytes().all(|b| ALPHANUMS.contains(&b)));
        assert_ne!(Ids::new(1).uid(), Ids::new(2).uid());
        let hash = template_hash(&PodTemplateSpec::default(), 0);
        assert!((1..=10).contains(&hash.len()));
        assert_eq!(hash, template_hash(&PodTemplateSpec::default(), 0));
        assert_ne!(hash, template_hash(&PodTemplateSpec::default(), 1));
    }
}
