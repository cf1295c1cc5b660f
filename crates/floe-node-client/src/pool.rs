//! Connection pools towards storage nodes, and how a node's registration becomes a URL.
//!
//! A node registered with a network key serves HTTPS, and its certificate must carry that key:
//! each such node gets a client whose TLS verifier pins the key (ALPN then picks HTTP/2). A
//! node registered without one serves plain HTTP on `host:port`. An explicit `http://` or
//! `https://` in the registered address wins; `https://` without a registered key is checked
//! against the system's certificate authorities.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use floe_crypto::NetworkPublicKey;

/// Pinned clients kept; a committee has far fewer members. Past it the cache starts over.
const MAX_PINNED_CLIENTS: usize = 4096;

/// Settings applied to every client of the pool.
type Configure = dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync;

/// Clients towards nodes, shared by clones: one for plain HTTP (and CA-checked HTTPS), one per
/// set of pinned network keys (a node's registered key, plus the one it replaced while the
/// ledger still honours it).
#[derive(Clone)]
pub struct NodeHttp {
    plain: reqwest::Client,
    pinned: Arc<Mutex<HashMap<Vec<NetworkPublicKey>, reqwest::Client>>>,
    configure: Arc<Configure>,
}

impl std::fmt::Debug for NodeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHttp").finish_non_exhaustive()
    }
}

/// A client could not be built (a TLS back-end problem; not expected at run time).
#[derive(Debug, thiserror::Error)]
#[error("cannot build an HTTP client: {0}")]
pub struct BuildError(String);

impl NodeHttp {
    /// Pools whose clients all get `configure` (timeouts, pool sizes).
    pub fn new(
        configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<Self, BuildError> {
        let plain = floe_tls::http_client(configure(reqwest::Client::builder()))
            .map_err(|e| BuildError(e.to_string()))?;
        Ok(Self {
            plain,
            pinned: Arc::default(),
            configure: Arc::new(configure),
        })
    }

    /// Pools with default settings and a 5 s connect timeout.
    pub fn with_defaults() -> Self {
        Self::new(|b| b.connect_timeout(std::time::Duration::from_secs(5)))
            .expect("a default HTTP client builds")
    }

    /// The client for plain HTTP and for HTTPS checked against certificate authorities.
    pub fn plain(&self) -> &reqwest::Client {
        &self.plain
    }

    /// The client that accepts only a node whose certificate carries one of `keys` (at least
    /// one).
    pub fn pinned(&self, keys: &[NetworkPublicKey]) -> Result<reqwest::Client, BuildError> {
        if keys.is_empty() {
            return Err(BuildError("no network key to pin".into()));
        }
        let mut pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = pinned.get(keys) {
            return Ok(c.clone());
        }
        // A preconfigured TLS set-up needs no CA bundle.
        let client = (self.configure)(reqwest::Client::builder())
            .pool_idle_timeout(floe_tls::POOL_IDLE_TIMEOUT)
            .tls_backend_preconfigured(floe_tls::pinned_client_config_any(keys.to_vec()))
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        if pinned.len() >= MAX_PINNED_CLIENTS {
            pinned.clear();
        }
        pinned.insert(keys.to_vec(), client.clone());
        Ok(client)
    }

    /// The base URL and client for a node registered at `address` with `keys` (its registered
    /// network key first; none: plain HTTP).
    pub fn route(
        &self,
        address: &str,
        keys: &[NetworkPublicKey],
    ) -> Result<(String, reqwest::Client), BuildError> {
        let address = address.trim_end_matches('/');
        if address.starts_with("http://") {
            return Ok((address.to_string(), self.plain.clone()));
        }
        let host = address.strip_prefix("https://").unwrap_or(address);
        match keys {
            [_, ..] => Ok((format!("https://{host}"), self.pinned(keys)?)),
            [] if address.starts_with("https://") => Ok((address.to_string(), self.plain.clone())),
            [] => Ok((format!("http://{host}"), self.plain.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_key_means_https_and_an_explicit_scheme_wins() {
        let http = NodeHttp::with_defaults();
        let key = NetworkPublicKey::from_bytes(&[2; 33]).unwrap();
        let url = |a: &str, k: &[NetworkPublicKey]| http.route(a, k).unwrap().0;
        assert_eq!(url("10.0.0.1:9185", &[key]), "https://10.0.0.1:9185");
        assert_eq!(url("10.0.0.1:9185", &[]), "http://10.0.0.1:9185");
        assert_eq!(url("http://10.0.0.1:9185/", &[key]), "http://10.0.0.1:9185");
        assert_eq!(url("https://n.example:443", &[]), "https://n.example:443");
        assert_eq!(
            url("https://n.example:443", &[key]),
            "https://n.example:443"
        );
        // One pinned client per set of keys, reused.
        http.pinned(&[key]).unwrap();
        http.pinned(&[key]).unwrap();
        assert_eq!(http.pinned.lock().unwrap().len(), 1);
        let replaced = NetworkPublicKey::from_bytes(&[3; 33]).unwrap();
        http.pinned(&[key, replaced]).unwrap();
        assert_eq!(http.pinned.lock().unwrap().len(), 2);
        assert!(http.pinned(&[]).is_err());
    }
}
