//! Outgoing HTTP to addresses that users chose: Web Push endpoints and the
//! pages behind links in messages. Both are SSRF doors, so both go through
//! here.
//!
//! The rules: a host name is resolved **once**; every address it resolves
//! to must be allowed by the [`Reach`] (public unicast only, by default:
//! no loopback, private, link-local, unique-local, multicast, unspecified,
//! documentation, broadcast or carrier-grade NAT address, IPv4-mapped IPv6
//! judged as the IPv4 address it carries); the client then connects to
//! that checked address only (`reqwest`'s resolve override: no second
//! lookup, so DNS rebinding cannot swap the address after the check) and
//! follows no redirect by itself (a caller that follows redirects checks
//! each hop here again). Literal host names that only ever mean this
//! machine or a LAN (`localhost`, `*.localhost`, dotless names) are refused
//! before any lookup.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

/// Which addresses a request may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public unicast addresses only (every real server).
    Public,
    /// Public and loopback addresses, on any port (`--link-preview-allow-private`,
    /// for tests that serve pages on 127.0.0.1): private, link-local,
    /// unspecified (`0.0.0.0` reaches this machine too) and the other
    /// ranges stay refused.
    AlsoLoopback,
    /// Anything (`--push-allow-private`, for tests with a stub push service).
    Anything,
}

impl Reach {
    /// Whether a connection to `ip` is allowed.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            Reach::Public => is_public(ip),
            Reach::AlsoLoopback => is_public(ip) || is_loopback(ip),
            Reach::Anything => true,
        }
    }
}

/// Whether `ip` is an ordinary public unicast address (IPv4-mapped IPv6
/// judged as the IPv4 address it carries).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Loopback, also IPv4-mapped (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether a host as written in a URL is refused before any lookup: a
/// literal address the reach does not allow, `localhost`, `*.localhost`, or
/// a dotless name (a LAN host). With [`Reach::Anything`] nothing is.
pub fn refused_host(host: &url::Host<&str>, reach: Reach) -> bool {
    match host {
        url::Host::Ipv4(ip) => !reach.allows(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => !reach.allows(IpAddr::V6(*ip)),
        url::Host::Domain(name) => {
            if reach != Reach::Public {
                return false;
            }
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost") || !name.contains('.')
        }
    }
}

/// Resolves `url`'s host once and checks every address against `reach`;
/// returns the host as written and the address to connect to.
pub async fn resolve_checked(
    url: &reqwest::Url,
    reach: Reach,
) -> anyhow::Result<(String, SocketAddr)> {
    let host = url.host().context("the URL names no host")?;
    anyhow::ensure!(!refused_host(&host, reach), "{host} is not a public host");
    let host = url.host_str().context("no host")?.to_string();
    let port = url.port_or_known_default().context("no port")?;
    let lookup = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup.as_str(), port))
        .await?
        .collect();
    let first = *addrs.first().context("the host has no address")?;
    // All of them, not just the one used: a name that also points inside
    // is not one we talk to.
    anyhow::ensure!(
        addrs.iter().all(|a| reach.allows(a.ip())),
        "{host} resolves to a non-public address"
    );
    Ok((host, first))
}

/// A client for one request to `url`: connects to the host's one checked
/// address (see [`resolve_checked`]), follows no redirect, gives up after
/// `timeout` in all.
pub async fn pinned_client(
    url: &reqwest::Url,
    reach: Reach,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    let (host, addr) = resolve_checked(url, reach).await?;
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve(&host, addr)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_unicast_is_public() {
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
        for private in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
    }

    #[test]
    fn the_test_reach_adds_loopback_and_nothing_else() {
        let r = Reach::AlsoLoopback;
        for ok in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "93.184.216.34"] {
            assert!(r.allows(ip(ok)), "{ok}");
        }
        for refused in [
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "192.168.0.1",
            "169.254.169.254",
            "fd00::1",
            "100.64.0.1",
        ] {
            assert!(!r.allows(ip(refused)), "{refused}");
        }
        assert!(Reach::Anything.allows(ip("10.0.0.1")));
    }

    #[test]
    fn lan_names_are_refused_before_any_lookup() {
        let refused = |s: &str| {
            let url = reqwest::Url::parse(s).unwrap();
            refused_host(&url.host().unwrap(), Reach::Public)
        };
        for bad in [
            "http://localhost/",
            "http://app.localhost/",
            "http://intranet/",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://0.0.0.0/",
            "http://2130706433/",
        ] {
            assert!(refused(bad), "{bad}");
        }
        assert!(!refused("https://example.com/"));
        assert!(!refused("https://93.184.216.34/"));
    }
}
