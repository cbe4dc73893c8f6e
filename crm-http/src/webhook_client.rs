//! The outbound side: [`WebhookClient`], the [`WebhookTransport`] that sends webhook attempts
//! over HTTP(S) and goes only where the host's [`OutboundPolicy`] allows (DESIGN.md, invariant
//! 13). It lives here, beside the server side, so that `crm-core` stays free of network I/O.
//!
//! How a request is kept from where it must not go:
//! - the URL must be `http` or `https`; a host written as an address is checked as it is;
//! - a host name is resolved once, by the client's [`HostLookup`], and refused if *any* of its
//!   addresses is refused (a name answering both a public and a private address is how
//!   rebinding attacks start); the connection then goes to an address that was checked, as the
//!   resolver hands only those to the connector: there is no second lookup;
//! - redirects are not followed (a 3xx is a failed attempt), proxies from the environment are
//!   not used, and an attempt ends after [`ATTEMPT_TIMEOUT`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crm_core::outbound::OutboundPolicy;
use crm_core::webhook::{
    ATTEMPT_TIMEOUT, RESPONSE_EXCERPT_BYTES, SendError, WebhookRequest, WebhookResponse, WebhookTransport,
    parse_retry_after,
};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Resolves host names for [`WebhookClient`]. Tests inject answers (a name resolving to a
/// private address) without a packet leaving the machine; [`SystemLookup`] asks the system.
#[async_trait]
pub trait HostLookup: Send + Sync + fmt::Debug + 'static {
    /// The addresses `host` resolves to.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo`, through Tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait]
impl HostLookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|addr| addr.ip()).collect())
    }
}

/// Sends webhook attempts where the [`OutboundPolicy`] allows, and nowhere else.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    policy: OutboundPolicy,
}

impl WebhookClient {
    /// A client under `policy`, resolving with the system resolver.
    pub fn new(policy: OutboundPolicy) -> Self {
        Self::with_lookup(policy, Arc::new(SystemLookup), ATTEMPT_TIMEOUT)
    }

    /// A client under `policy` that resolves names with `lookup` and gives an attempt
    /// `timeout` (tests shorten it).
    pub fn with_lookup(policy: OutboundPolicy, lookup: Arc<dyn HostLookup>, timeout: Duration) -> Self {
        let resolver = CheckedResolver { lookup, policy: policy.clone() };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("crm-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        WebhookClient { client, policy }
    }

    /// The URL, checked: `http(s)`, and a host written as an address allowed by the policy.
    fn checked_url(&self, url: &str) -> Result<reqwest::Url, SendError> {
        let url = reqwest::Url::parse(url).map_err(|_| SendError::Refused("not a URL".into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SendError::Refused(format!("the scheme {:?} is not http or https", url.scheme())));
        }
        let host = url.host_str().ok_or_else(|| SendError::Refused("the URL has no host".into()))?;
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            self.policy.check(ip).map_err(|why| SendError::Refused(format!("{ip} is {why}")))?;
        }
        Ok(url)
    }
}

#[async_trait]
impl WebhookTransport for WebhookClient {
    async fn send(&self, request: &WebhookRequest) -> Result<WebhookResponse, SendError> {
        let url = self.checked_url(&request.url)?;
        let mut outgoing = self.client.post(url).body(request.body.clone());
        for (name, value) in &request.headers {
            outgoing = outgoing.header(*name, value);
        }
        let mut response = outgoing.send().await.map_err(send_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(send_error(error)),
            }
        }
        excerpt.truncate(RESPONSE_EXCERPT_BYTES);
        Ok(WebhookResponse { status, retry_after, excerpt: String::from_utf8_lossy(&excerpt).into_owned() })
    }
}

/// A refusal by the resolver, found again in the error reqwest wraps it in.
#[derive(Debug)]
struct RefusedAddress(String);

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedAddress {}

fn send_error(error: reqwest::Error) -> SendError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return SendError::Refused(refused.0.clone());
        }
        source = e.source();
    }
    if error.is_timeout() {
        SendError::Timeout
    } else {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(e) = source {
            message = format!("{message}: {e}");
            source = e.source();
        }
        SendError::Connection(message)
    }
}

/// The resolver the connector uses: it returns a name's addresses only if the policy allows
/// every one of them.
#[derive(Debug)]
struct CheckedResolver {
    lookup: Arc<dyn HostLookup>,
    policy: OutboundPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (lookup, policy) = (Arc::clone(&self.lookup), self.policy.clone());
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let ips = lookup.lookup(&host).await?;
            if ips.is_empty() {
                return Err(format!("{host} resolves to no address").into());
            }
            for ip in &ips {
                if let Err(why) = policy.check(*ip) {
                    let refused = RefusedAddress(format!("{host} resolves to {ip}, {why}"));
                    return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            // Port 0: the connector puts the URL's port in.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
