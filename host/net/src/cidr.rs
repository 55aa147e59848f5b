//! A minimal IPv4 CIDR type (no extra dependency for a dozen lines).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

/// An IPv4 prefix such as `10.1.0.0/16`. The address is kept as given (host bits are not cleared), so
/// `10.1.0.4/24` can also describe "address 10.1.0.4 in subnet 10.1.0.0/24".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Net {
    /// A prefix from an address and a length (0..=32).
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, Error> {
        if prefix_len > 32 {
            return Err(Error::InvalidCidr(format!("{addr}/{prefix_len}")));
        }
        Ok(Ipv4Net { addr, prefix_len })
    }

    /// The /32 prefix holding exactly `addr`.
    pub fn host(addr: Ipv4Addr) -> Self {
        Ipv4Net { addr, prefix_len: 32 }
    }

    /// The address as given.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask as a number.
    fn mask(&self) -> u32 {
        if self.prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix_len)) }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The same prefix with host bits cleared.
    pub fn trunc(&self) -> Ipv4Net {
        Ipv4Net { addr: self.network(), prefix_len: self.prefix_len }
    }

    /// The first address after the network address: Azure's default gateway of a subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).wrapping_add(1))
    }

    /// Whether `ip` lies in this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn contains_net(&self, other: &Ipv4Net) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.network())
    }

    /// Whether the two prefixes share at least one address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains_net(other) || other.contains_net(self)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    /// Parses `A.B.C.D/N`, or a bare address as a /32.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidCidr(s.to_owned());
        match s.split_once('/') {
            Some((a, n)) => {
                let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
                if n.is_empty() || n.len() > 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let len: u8 = n.parse().map_err(|_| bad())?;
                Ipv4Net::new(addr, len).map_err(|_| bad())
            }
            None => Ok(Ipv4Net::host(s.parse().map_err(|_| bad())?)),
        }
    }
}

impl From<Ipv4Addr> for Ipv4Net {
    fn from(addr: Ipv4Addr) -> Self {
        Ipv4Net::host(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_math() {
        let n: Ipv4Net = "10.1.0.4/24".parse().unwrap();
        assert_eq!(n.network(), Ipv4Addr::new(10, 1, 0, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 1, 0, 255));
        assert_eq!(n.gateway(), Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(n.trunc().to_string(), "10.1.0.0/24");
        assert!(n.contains(Ipv4Addr::new(10, 1, 0, 200)));
        assert!(!n.contains(Ipv4Addr::new(10, 1, 1, 0)));
        let big: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        assert!(big.contains_net(&n) && !n.contains_net(&big) && n.overlaps(&big));
        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(255, 1, 2, 3)));
        assert_eq!("1.2.3.4".parse::<Ipv4Net>().unwrap(), Ipv4Net::host(Ipv4Addr::new(1, 2, 3, 4)));
        for bad in ["10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "x/8", "10.0.0.0/+8", "10.0.0.0/008"] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }
}
