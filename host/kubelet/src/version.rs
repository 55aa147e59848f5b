//! The kubelet version, which decides some message formats.

use std::fmt;
use std::str::FromStr;

use crate::error::KubeletError;

/// A Kubernetes version (`v1.33.2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeletVersion {
    /// Major (1).
    pub major: u32,
    /// Minor (33).
    pub minor: u32,
    /// Patch (2).
    pub patch: u32,
}

impl KubeletVersion {
    /// The version used when none is given: v1.33.2.
    pub const DEFAULT: KubeletVersion = KubeletVersion::new(1, 33, 2);

    /// `vMAJOR.MINOR.PATCH`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self { major, minor, patch }
    }

    /// From 1.28 the kubelet drops `rpc error: code = Unknown desc = ` from runtime errors
    /// (other codes keep their prefix).
    pub fn drops_unknown_rpc_prefix(&self) -> bool {
        (self.major, self.minor) >= (1, 28)
    }

    /// From 1.32 the `ImagePullBackOff` waiting message ends with `: ErrImagePull: ERR`.
    pub fn back_off_message_has_error(&self) -> bool {
        (self.major, self.minor) >= (1, 32)
    }
}

impl Default for KubeletVersion {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for KubeletVersion {
    type Err = KubeletError;

    /// Parses `v1.33.2`, `1.33.2`, `1.33` or `v1.33.2-aks.1` (suffixes after `-`/`+` ignored).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || KubeletError::Version(text.to_owned());
        let core = text.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let mut number = |required: bool| -> Result<u32, KubeletError> {
            match parts.next() {
                Some(p) => p.parse().map_err(|_| bad()),
                None if required => Err(bad()),
                None => Ok(0),
            }
        };
        let version = Self::new(number(true)?, number(true)?, number(false)?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        assert_eq!("v1.33.2".parse::<KubeletVersion>().unwrap(), KubeletVersion::new(1, 33, 2));
        assert_eq!("1.27".parse::<KubeletVersion>().unwrap(), KubeletVersion::new(1, 27, 0));
        assert_eq!("v1.31.4-aks.1".parse::<KubeletVersion>().unwrap().to_string(), "v1.31.4");
        assert!("one.two".parse::<KubeletVersion>().is_err());
        assert!("1.2.3.4".parse::<KubeletVersion>().is_err());
        assert!(!KubeletVersion::new(1, 27, 9).drops_unknown_rpc_prefix());
        assert!(KubeletVersion::new(1, 28, 0).drops_unknown_rpc_prefix());
        assert!(!KubeletVersion::new(1, 31, 0).back_off_message_has_error());
        assert!(KubeletVersion::new(1, 32, 0).back_off_message_has_error());
    }
}
