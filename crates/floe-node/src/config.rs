//! The node's configuration file (TOML) and key file.

use std::path::{Path, PathBuf};

use floe_crypto::ProtocolKeyPair;
use floe_ledger::AccountKey;
use floe_tls::NetworkKeyPair;
use serde::{Deserialize, Serialize};

/// Errors reading configuration or keys.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid node configuration: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Keys { path: PathBuf, reason: String },
}

/// `floe node run --config FILE`. See `node.example.toml` for every field, commented.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory of the node's database.
    pub storage_path: PathBuf,
    /// The key file written by `floe node keygen` (or `floe ledger init --generate`).
    pub keys_path: PathBuf,
    /// Address to listen on for the REST API, e.g. `127.0.0.1:9185`.
    pub listen_address: String,
    /// Base URL of the ledger, e.g. `http://127.0.0.1:9100` (or a comma-separated list of
    /// replicas). May be left out when `ledger_urls` is given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ledger_url: String,
    /// Replicas of the ledger; when given, used instead of `ledger_url` (the node fails over
    /// between them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger_urls: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub tls: TlsConfig,
}

/// How the node serves its REST API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Serve plain HTTP: for a node behind a proxy that terminates TLS (the proxy's
    /// certificate must then carry the node's network key, which clients pin).
    pub disable_tls: bool,
    /// A PEM certificate chain for the network key (e.g. from a public CA); without it the node
    /// makes a self-signed certificate from its network key at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_path: Option<PathBuf>,
}

/// Bounds on what clients can make the node hold.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, in bytes (a sliver at most; the batched route more).
    pub max_body_bytes: usize,
    /// Uploads buffered while their registration is not yet seen: entries and bytes.
    pub pending_max_entries: usize,
    pub pending_max_bytes: usize,
    /// How long a buffered upload waits for its registration, in seconds.
    pub pending_ttl_secs: u64,
    /// Concurrent recovery-symbol requests served.
    pub max_recovery_requests: usize,
    /// Blobs synced (recovered) at once.
    pub max_concurrent_syncs: usize,
    /// Recover missing slivers from decoding symbols without proofs first, checking each
    /// rebuilt sliver against the metadata, and use recovery symbols with Merkle proofs only
    /// for what that cannot settle. Off: proven recovery symbols only, several times the bytes
    /// at large n.
    pub sync_decoding_symbols: bool,
    /// After a blob is certified, wait this long before recovering what is missing, so that
    /// uploads still in flight can land (milliseconds).
    pub sync_delay_ms: u64,
    /// Period of the maintenance scan (sync retries and garbage collection), in seconds.
    pub maintenance_interval_secs: u64,
    /// Never rebuild missing slivers (RedStuff recovery after certification, retries and the
    /// maintenance scan): for a maintenance window, or to check that audits and challenges
    /// catch a node that lacks data. Reads and audits of what is missing fail meanwhile.
    pub recovery_paused: bool,
    /// The storage engine's block and blob cache, in bytes.
    pub store_cache_bytes: u64,
    /// Bytes of recent writes the storage engine may hold in memory (all memtables together)
    /// before it flushes the largest to disk.
    pub store_write_buffer_bytes: u64,
    /// The longest a confirmation request with `wait_for_registration=true` waits for the
    /// blob's registration, in milliseconds (`wait_millis` is capped to it; 0 disables the
    /// long poll).
    pub confirmation_long_poll_max_millis: u64,
    /// Confirmation requests that may wait for a registration at once; more get 503.
    pub max_confirmation_waiters: usize,
    /// Longest wait for the next piece of a request body, in milliseconds (then 408).
    pub body_idle_timeout_ms: u64,
    /// Issue the storage challenges this node owes each epoch (see `floe_ledger::challenge`).
    /// Off, the ledger records every one of them as not issued.
    pub challenges_enabled: bool,
    /// How often the node asks the ledger whether challenges are due, in milliseconds.
    pub challenge_poll_ms: u64,
    /// How long a challenged node has to answer one challenge, in milliseconds.
    pub challenge_timeout_ms: u64,
    /// Challenges in flight at once.
    pub challenge_concurrency: usize,
    /// Client connections served at once (more wait in the kernel's backlog).
    pub max_connections: usize,
    /// Time a client has to send a request's headers, in milliseconds; a connection that
    /// dribbles them, or idles that long between requests, is closed. Keep it above Floe's
    /// clients' idle timeout (`floe_tls::POOL_IDLE_TIMEOUT`, 20 s), or a client may reuse a
    /// connection just as the node closes it.
    pub header_read_timeout_ms: u64,
    /// The node keeps up to two emptied upload buffers (16 MiB each at most) for the next
    /// sliver batches, and frees them once none was taken for between one and two periods of
    /// this many milliseconds.
    pub upload_buffers_idle_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024 * 1024,
            pending_max_entries: 4096,
            pending_max_bytes: 512 * 1024 * 1024,
            pending_ttl_secs: 60,
            max_recovery_requests: 64,
            max_concurrent_syncs: 16,
            sync_decoding_symbols: true,
            sync_delay_ms: 2000,
            maintenance_interval_secs: 30,
            recovery_paused: false,
            store_cache_bytes: 64 * 1024 * 1024,
            store_write_buffer_bytes: 32 * 1024 * 1024,
            confirmation_long_poll_max_millis: 10_000,
            max_confirmation_waiters: 1024,
            body_idle_timeout_ms: 30_000,
            challenges_enabled: true,
            challenge_poll_ms: 5_000,
            challenge_timeout_ms: 5_000,
            challenge_concurrency: 4,
            max_connections: 1024,
            header_read_timeout_ms: 30_000,
            upload_buffers_idle_ms: 5_000,
        }
    }
}

impl NodeConfig {
    /// The ledger URLs to use: `ledger_urls` if given, else `ledger_url` split at commas.
    pub fn ledger_urls(&self) -> Vec<String> {
        if self.ledger_urls.is_empty() {
            self.ledger_url
                .split(',')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect()
        } else {
            self.ledger_urls.clone()
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let mut config: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            reason: e.to_string(),
        })?;
        if config.ledger_urls().is_empty() {
            return Err(ConfigError::Parse {
                path: path.into(),
                reason: "no ledger: set ledger_url = \"http://HOST:PORT\" or ledger_urls = \
                         [\"http://HOST:PORT\", …] (one URL per ledger replica)"
                    .into(),
            });
        }
        if config.limits.max_connections == 0 || config.limits.header_read_timeout_ms == 0 {
            return Err(ConfigError::Parse {
                path: path.into(),
                reason:
                    "limits.max_connections and limits.header_read_timeout_ms must be at least 1"
                        .into(),
            });
        }
        // Relative paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        let certificate = config.tls.certificate_path.iter_mut();
        for p in [&mut config.storage_path, &mut config.keys_path]
            .into_iter()
            .chain(certificate)
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }
}

/// A node's secrets: its BLS protocol key, its network (TLS) key and the Ed25519 key of its
/// operator account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeKeysFile {
    pub name: String,
    pub network_address: String,
    /// BLS protocol key, tagged base64.
    pub protocol_key: String,
    /// Ed25519 account seed, hex.
    pub account_seed: String,
    /// secp256r1 network key, PKCS#8 PEM. Key files written before nodes had network keys
    /// lack it: such a node can only serve plain HTTP (`tls.disable_tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_key: Option<String>,
}

/// Loaded keys.
pub struct NodeKeys {
    pub name: String,
    pub protocol: ProtocolKeyPair,
    pub account: AccountKey,
    pub network: Option<NetworkKeyPair>,
}

impl NodeKeys {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let file: NodeKeysFile = serde_json::from_str(&text).map_err(|e| ConfigError::Keys {
            path: path.into(),
            reason: format!("not a node key file: {e}"),
        })?;
        let protocol = ProtocolKeyPair::from_tagged_base64(&file.protocol_key).map_err(|e| {
            ConfigError::Keys {
                path: path.into(),
                reason: format!("bad protocol key: {e}"),
            }
        })?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&file.account_seed, &mut seed).map_err(|e| ConfigError::Keys {
            path: path.into(),
            reason: format!("bad account seed: {e}"),
        })?;
        let network = file
            .network_key
            .as_deref()
            .map(NetworkKeyPair::from_pem)
            .transpose()
            .map_err(|e| ConfigError::Keys {
                path: path.into(),
                reason: format!("bad network key: {e}"),
            })?;
        Ok(Self {
            name: file.name,
            protocol,
            account: AccountKey::from_seed(&seed),
            network,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_documents_every_limit() {
        let config: NodeConfig = toml::from_str(include_str!("../node.example.toml")).unwrap();
        let defaults = toml::to_string(&Limits::default()).unwrap();
        let example = toml::to_string(&config.limits).unwrap();
        assert_eq!(example, defaults, "the example's limits are the defaults");
        for line in defaults.lines() {
            let key = line.split('=').next().unwrap().trim();
            assert!(
                include_str!("../node.example.toml").contains(&format!("\n{key} = ")),
                "node.example.toml does not document {key}"
            );
        }
    }

    fn load_text(text: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(&path)
    }

    /// A node of a replicated control plane lists its replicas and needs no `ledger_url`; a
    /// config with neither is refused with a message that says what to add.
    #[test]
    fn ledger_urls_alone_is_enough_and_no_ledger_at_all_is_refused() {
        let base =
            "storage_path = \"/d\"\nkeys_path = \"/k.json\"\nlisten_address = \"0.0.0.0:9185\"\n";
        let c = load_text(&format!(
            "{base}ledger_urls = [\"http://a:9100\", \"http://b:9100\"]\n"
        ))
        .unwrap();
        assert_eq!(c.ledger_urls(), vec!["http://a:9100", "http://b:9100"]);
        let c = load_text(&format!(
            "{base}ledger_url = \"http://a:9100,http://b:9100\"\n"
        ))
        .unwrap();
        assert_eq!(c.ledger_urls(), vec!["http://a:9100", "http://b:9100"]);
        let err = load_text(base).unwrap_err().to_string();
        assert!(err.contains("ledger_urls = ["), "{err}");
    }
}
