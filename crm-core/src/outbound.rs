//! Which addresses an outbound request may reach (invariant 13 of DESIGN.md).
//!
//! Webhook delivery (issue 16) resolves a host once, asks [`OutboundPolicy::check`] about every
//! address it got, and connects to the one it checked — never to a name resolved again. This
//! module is the decision: addresses that reach the host's own machine or network (loopback,
//! private, link-local, shared CGNAT space, cloud metadata, multicast, reserved) are refused
//! unless the host allowed their range explicitly (tests allow loopback; the standalone server
//! takes `--webhook-allow 127.0.0.0/8`). An IPv6 address that carries an IPv4 one (mapped,
//! NAT64, 6to4) is judged by the IPv4 address it carries, so `::ffff:10.0.0.1` is private too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range, `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The range of `prefix` leading bits of `network`; `None` when the prefix is longer than
    /// the address or bits past it are set (`10.0.0.1/8` names no range).
    pub fn new(network: IpAddr, prefix: u8) -> Option<Self> {
        let cidr = Self { network, prefix };
        let bits = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix <= bits && cidr.contains(network) && masked(network, prefix) == network).then_some(cidr)
    }

    /// Whether `ip` is in the range (an IPv4 range holds no IPv6 address, and the reverse).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                masked(ip, self.prefix) == masked(self.network, self.prefix)
            }
            _ => false,
        }
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a range of one).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| format!("`{text}` is not an address range"))?;
        let longest = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => longest,
            Some(p) => p.parse::<u8>().map_err(|_| format!("`{text}`: the prefix is not a number"))?,
        };
        Cidr::new(network, prefix).ok_or_else(|| {
            format!("`{text}` is not a range: a prefix of at most {longest} bits, no bits set past it")
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Why an address is refused: the kind of range it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This machine: `127.0.0.0/8`, `::1`, `0.0.0.0/8`, `::`.
    Loopback,
    /// A private network: `10/8`, `172.16/12`, `192.168/16`, IPv6 unique local `fc00::/7`.
    Private,
    /// Link-local, where cloud metadata services live: `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// Shared address space behind carrier-grade NAT: `100.64.0.0/10`.
    SharedNat,
    /// Multicast and broadcast: `224/4`, `255.255.255.255`, `ff00::/8`.
    Multicast,
    /// Reserved, documentation and benchmarking ranges that name no public host.
    Reserved,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::Loopback => "a loopback address",
            Refused::Private => "a private address",
            Refused::LinkLocal => "a link-local address",
            Refused::SharedNat => "a shared (CGNAT) address",
            Refused::Multicast => "a multicast or broadcast address",
            Refused::Reserved => "a reserved address",
        })
    }
}

/// The host's rule for outbound requests: public addresses, plus the ranges it allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allowed: Vec<Cidr>,
}

impl OutboundPolicy {
    /// Public addresses only.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Also allows `range`, refused otherwise (tests allow `127.0.0.0/8`).
    pub fn allow(mut self, range: Cidr) -> Self {
        self.allowed.push(range);
        self
    }

    /// A policy from a comma-separated list of ranges (`CRM_WEBHOOK_ALLOW`), e.g.
    /// `127.0.0.0/8, ::1`; empty allows none.
    pub fn from_allow_list(list: &str) -> Result<Self, String> {
        let ranges = list.split(',').map(str::trim).filter(|r| !r.is_empty());
        Ok(Self { allowed: ranges.map(str::parse).collect::<Result<_, _>>()? })
    }

    /// The ranges the host allowed.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allowed
    }

    /// Whether a request may go to `ip`: yes for a public address or one in an allowed range,
    /// else the kind of range that refuses it.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allowed.iter().any(|range| range.contains(ip)) {
            return Ok(());
        }
        match classify(ip) {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }
}

/// The refused range `ip` is in, if any; an IPv6 address that carries an IPv4 one is judged
/// by that.
fn classify(ip: IpAddr) -> Option<Refused> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn in_v4(ip: Ipv4Addr, ranges: &[(u32, u8)]) -> bool {
    ranges.iter().any(|&(network, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        u32::from(ip) & mask == network & mask
    })
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refused> {
    let v = |a: u8, b: u8, c: u8, d: u8| u32::from(Ipv4Addr::new(a, b, c, d));
    let checks: [(Refused, &[(u32, u8)]); 6] = [
        (Refused::Loopback, &[(v(127, 0, 0, 0), 8), (v(0, 0, 0, 0), 8)]),
        (Refused::Private, &[(v(10, 0, 0, 0), 8), (v(172, 16, 0, 0), 12), (v(192, 168, 0, 0), 16)]),
        (Refused::LinkLocal, &[(v(169, 254, 0, 0), 16)]),
        (Refused::SharedNat, &[(v(100, 64, 0, 0), 10)]),
        (Refused::Multicast, &[(v(224, 0, 0, 0), 4), (v(255, 255, 255, 255), 32)]),
        (
            Refused::Reserved,
            &[
                (v(192, 0, 0, 0), 24),
                (v(192, 0, 2, 0), 24),
                (v(198, 18, 0, 0), 15),
                (v(198, 51, 100, 0), 24),
                (v(203, 0, 113, 0), 24),
                (v(240, 0, 0, 0), 4),
            ],
        ),
    ];
    checks.into_iter().find(|(_, ranges)| in_v4(ip, ranges)).map(|(refused, _)| refused)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refused> {
    let bits = u128::from(ip);
    let within = |network: u128, prefix: u32| {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits & mask == network & mask
    };
    if ip.is_loopback() || ip.is_unspecified() {
        Some(Refused::Loopback)
    } else if within(0xfc00 << 112, 7) {
        Some(Refused::Private)
    } else if within(0xfe80 << 112, 10) || within(0xfec0 << 112, 10) {
        Some(Refused::LinkLocal)
    } else if within(0xff00 << 112, 8) {
        Some(Refused::Multicast)
    } else if within(0x2001_0db8 << 96, 32) || within(0x0100 << 112, 64) || within(0, 96) {
        // Documentation, discard-only, and the deprecated IPv4-compatible `::/96`.
        Some(Refused::Reserved)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 one carries: mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
/// `2002:a.b.c.d::/16`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The SSRF matrix: every kind of address a webhook URL could resolve to.
    #[test]
    fn addresses_that_reach_the_host_are_refused() {
        let policy = OutboundPolicy::public_only();
        let matrix = [
            ("127.0.0.1", Some(Refused::Loopback)),
            ("127.255.255.254", Some(Refused::Loopback)),
            ("0.0.0.0", Some(Refused::Loopback)),
            ("::1", Some(Refused::Loopback)),
            ("::", Some(Refused::Loopback)),
            ("10.1.2.3", Some(Refused::Private)),
            ("172.16.0.1", Some(Refused::Private)),
            ("172.31.255.255", Some(Refused::Private)),
            ("192.168.1.1", Some(Refused::Private)),
            ("fd00::1", Some(Refused::Private)),
            ("fd00:ec2::254", Some(Refused::Private)), // AWS metadata over IPv6
            ("169.254.169.254", Some(Refused::LinkLocal)), // cloud metadata
            ("fe80::1", Some(Refused::LinkLocal)),
            ("100.64.0.1", Some(Refused::SharedNat)),
            ("100.127.255.255", Some(Refused::SharedNat)),
            ("224.0.0.1", Some(Refused::Multicast)),
            ("255.255.255.255", Some(Refused::Multicast)),
            ("ff02::1", Some(Refused::Multicast)),
            ("192.0.2.10", Some(Refused::Reserved)),
            ("198.18.0.1", Some(Refused::Reserved)),
            ("240.0.0.1", Some(Refused::Reserved)),
            ("2001:db8::1", Some(Refused::Reserved)),
            ("::ffff:10.0.0.1", Some(Refused::Private)), // v4-mapped
            ("::ffff:127.0.0.1", Some(Refused::Loopback)),
            ("::ffff:169.254.169.254", Some(Refused::LinkLocal)),
            ("64:ff9b::a9fe:a9fe", Some(Refused::LinkLocal)), // NAT64 of 169.254.169.254
            ("2002:7f00:1::", Some(Refused::Loopback)),       // 6to4 of 127.0.0.1
            ("::10.0.0.1", Some(Refused::Reserved)),          // IPv4-compatible, deprecated
            // Public addresses go.
            ("93.184.216.34", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("2606:4700::1111", None),
            ("::ffff:93.184.216.34", None),
        ];
        for (address, expected) in matrix {
            assert_eq!(policy.check(ip(address)).err(), expected, "{address}");
        }
    }

    #[test]
    fn allowed_ranges_open_exactly_themselves() {
        let policy = OutboundPolicy::from_allow_list("127.0.0.0/8, ::1").unwrap();
        assert_eq!(policy.allowed().len(), 2);
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::1")), Ok(()));
        assert_eq!(policy.check(ip("10.0.0.1")), Err(Refused::Private));
        assert_eq!(policy.check(ip("169.254.169.254")), Err(Refused::LinkLocal));
        // A mapped address is not in an IPv4 range: allowing 127/8 does not open ::ffff:127.0.0.1.
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Err(Refused::Loopback));
        assert_eq!(OutboundPolicy::from_allow_list("").unwrap(), OutboundPolicy::public_only());
    }

    #[test]
    fn ranges_parse_strictly() {
        assert_eq!("10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().to_string(), "0.0.0.0/0");
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "::/129", "10.0.0.0/x", "example.com", "", "10.0.0.0/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert!(OutboundPolicy::from_allow_list("127.0.0.0/8,10.0.0.1/8").is_err());
        let all_v4: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all_v4.contains(ip("8.8.8.8")) && !all_v4.contains(ip("::1")));
    }
}
