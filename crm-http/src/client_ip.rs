//! The client's address for per-address rate limits, seen through trusted reverse proxies only.
//!
//! `X-Forwarded-For` is written by whoever sends the request, so it is believed only when the
//! connection comes from a configured proxy, and then read from the right: each trusted hop is
//! skipped and the first address no trusted proxy vouches for is the client. Without trusted
//! proxies the header is ignored — otherwise any client could pick a fresh address per request
//! and never be limited.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use crate::ApiState;

/// An address or a CIDR block (`10.0.0.0/8`, `::1`, `192.168.1.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(net.to_bits(), ip.to_bits(), self.prefix, 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(net.to_bits(), ip.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_matches<T>(net: T, ip: T, prefix: u8, bits: u32) -> bool
where
    T: Into<u128>,
{
    let shift = bits - u32::from(prefix);
    let (net, ip) = (net.into(), ip.into());
    shift >= bits || (net >> shift) == (ip >> shift)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not an IP address or CIDR block");
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let network = canonical(address.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(IpRange { network, prefix })
    }
}

/// The client address of a request: the peer, or — when the peer is a trusted proxy — the
/// rightmost `X-Forwarded-For` entry not itself trusted. `None` when the server was not started
/// with connection info (e.g. a router driven directly in tests).
pub(crate) fn client_ip(extensions: &Extensions, headers: &HeaderMap, trusted: &[IpRange]) -> Option<IpAddr> {
    let ConnectInfo(peer) = extensions.get::<ConnectInfo<SocketAddr>>()?;
    let peer = canonical(peer.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else { return Some(peer) };
        for hop in value.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(canonical(ip)),
                // A hop we cannot read ends what we can believe.
                Err(_) => return Some(peer),
            }
        }
    }
    Some(hops.into_iter().rev().find(|ip| !is_trusted(*ip)).unwrap_or(peer))
}

/// The caller's address as [`client_ip`] sees it, for handlers (the login throttle).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<ApiState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions, &parts.headers, &state.config().trusted_proxies)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn client(request: &Request<()>, trusted: &[IpRange]) -> Option<IpAddr> {
        client_ip(request.extensions(), request.headers(), trusted)
    }

    fn request(peer: &str, forwarded: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        let peer: SocketAddr = format!("{peer}:4000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        for value in forwarded {
            request.headers_mut().append("x-forwarded-for", value.parse().unwrap());
        }
        request
    }

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|r| r.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_parse_and_match() {
        let net: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.1.1".parse().unwrap()), "IPv4-mapped IPv6 is IPv4");
        let one: IpRange = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()) && !one.contains("::2".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // A direct client cannot choose its address.
        assert_eq!(client(&request("203.0.113.9", &["1.2.3.4"]), &trusted), ip("203.0.113.9"));
        assert_eq!(client(&request("203.0.113.9", &["1.2.3.4"]), &[]), ip("203.0.113.9"));
        // Through the proxy: the rightmost untrusted hop, whatever the client prepended.
        assert_eq!(client(&request("10.0.0.2", &["1.2.3.4, 198.51.100.7"]), &trusted), ip("198.51.100.7"));
        assert_eq!(
            client(&request("10.0.0.2", &["1.2.3.4", "198.51.100.7, 10.0.0.9"]), &trusted),
            ip("198.51.100.7"),
            "several headers and trusted hops"
        );
        assert_eq!(client(&request("10.0.0.2", &[]), &trusted), ip("10.0.0.2"));
        assert_eq!(client(&request("10.0.0.2", &["garbage"]), &trusted), ip("10.0.0.2"));
        assert_eq!(client(&Request::new(()), &trusted), None);
    }
}
