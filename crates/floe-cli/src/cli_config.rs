//! The client's configuration file and wallet: where they are looked for, and how a wallet is
//! created on first use.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use floe_client::{ClientConfig, CommunicationConfig};
use floe_ledger::AccountKey;
use serde::{Deserialize, Serialize};

/// Options every network command takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CommonArgs {
    /// The client config file (YAML). Default: $FLOE_CONFIG, ./floe.yaml,
    /// ./floe-testbed/floe.yaml, $XDG_CONFIG_HOME/floe/floe.yaml, ~/.config/floe/floe.yaml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Use this ledger instead of the config's `ledger_url` (several replicas: comma-separated).
    #[arg(long)]
    pub ledger_url: Option<String>,
    /// Use this wallet file instead of the config's `wallet`.
    #[arg(long)]
    pub wallet: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `floe.yaml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The ledger, e.g. `http://127.0.0.1:9100`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ledger_url: String,
    /// Replicas of the ledger (instead of `ledger_url`); the client fails over between them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger_urls: Vec<String>,
    /// The wallet file (relative paths are relative to this file); created on first use.
    #[serde(default = "default_wallet")]
    pub wallet: PathBuf,
    /// The local daemon (aggregator/publisher), shown by `floe info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_url: Option<String>,
    #[serde(default)]
    pub communication: CommunicationConfig,
    /// How patch reads of quilts get missing columns.
    #[serde(default, skip_serializing_if = "is_default")]
    pub quilt: floe_client::QuiltReadConfig,
}

fn is_default(q: &floe_client::QuiltReadConfig) -> bool {
    *q == floe_client::QuiltReadConfig::default()
}

fn default_wallet() -> PathBuf {
    "wallet.json".into()
}

/// A wallet file: the seed of the account's Ed25519 key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WalletFile {
    version: u32,
    /// Hex Ed25519 seed.
    seed: String,
    /// The account address (informative; recomputed from the seed).
    address: String,
}

/// A loaded configuration.
pub struct Loaded {
    /// The config file used, if any.
    pub path: Option<PathBuf>,
    pub client: ClientConfig,
    pub wallet_path: PathBuf,
    pub daemon_url: Option<String>,
}

fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var("FLOE_CONFIG") {
        v.push(PathBuf::from(p));
    }
    v.push("floe.yaml".into());
    v.push("floe-testbed/floe.yaml".into());
    if let Ok(x) = std::env::var("XDG_CONFIG_HOME") {
        v.push(Path::new(&x).join("floe/floe.yaml"));
    }
    if let Ok(h) = std::env::var("HOME") {
        v.push(Path::new(&h).join(".config/floe/floe.yaml"));
    }
    v
}

pub fn read_config_file(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let file: ConfigFile = serde_yaml_ng::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid floe client config (it needs at least `ledger_url: http://HOST:PORT`)",
            path.display()
        )
    })?;
    if file.ledger_url.is_empty() && file.ledger_urls.is_empty() {
        bail!(
            "{} names no ledger: give `ledger_url: http://HOST:PORT` or `ledger_urls: [URL, …]`",
            path.display()
        );
    }
    Ok(file)
}

/// Find and read the configuration, applying command-line overrides.
pub fn load(args: &CommonArgs) -> Result<Loaded> {
    let path = match &args.config {
        Some(p) => Some(p.clone()),
        None => candidates().into_iter().find(|p| p.is_file()),
    };
    let (file, base) = match &path {
        Some(p) => (
            read_config_file(p)?,
            p.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => match &args.ledger_url {
            Some(url) => (
                ConfigFile {
                    ledger_url: url.clone(),
                    ledger_urls: Vec::new(),
                    wallet: default_home_wallet()?,
                    daemon_url: None,
                    communication: CommunicationConfig::default(),
                    quilt: floe_client::QuiltReadConfig::default(),
                },
                PathBuf::new(),
            ),
            None => bail!(
                "no client config found (looked for $FLOE_CONFIG, ./floe.yaml, \
                 ./floe-testbed/floe.yaml and ~/.config/floe/floe.yaml). Start a local network \
                 with `floe testbed`, which writes one, or pass --config FILE or --ledger-url URL"
            ),
        },
    };
    let wallet_path = match &args.wallet {
        Some(w) => w.clone(),
        None if file.wallet.is_relative() => base.join(&file.wallet),
        None => file.wallet.clone(),
    };
    Ok(Loaded {
        path,
        client: match &args.ledger_url {
            Some(url) => ClientConfig {
                ledger_url: url.clone(),
                ledger_urls: Vec::new(),
                communication: file.communication,
                quilt: file.quilt,
            },
            None => ClientConfig {
                ledger_url: file.ledger_url,
                ledger_urls: file.ledger_urls,
                communication: file.communication,
                quilt: file.quilt,
            },
        },
        wallet_path,
        daemon_url: file.daemon_url,
    })
}

fn default_home_wallet() -> Result<PathBuf> {
    let home = std::env::var("HOME").context("HOME is not set; pass --wallet FILE")?;
    Ok(Path::new(&home).join(".config/floe/wallet.json"))
}

/// Load the wallet at `path`, creating a new random one there if none exists.
pub fn load_or_create_wallet(path: &Path, quiet: bool) -> Result<AccountKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the wallet {}", path.display()))?;
        let w: WalletFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a floe wallet file", path.display()))?;
        if w.version != 1 {
            bail!(
                "wallet {} has format version {}, this floe reads version 1",
                path.display(),
                w.version
            );
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(w.seed.trim(), &mut seed)
            .with_context(|| format!("wallet {} has a malformed seed", path.display()))?;
        return Ok(AccountKey::from_seed(&seed));
    }
    let mut seed = [0u8; 32];
    getrandom_seed(&mut seed)?;
    let key = AccountKey::from_seed(&seed);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = WalletFile {
        version: 1,
        seed: hex::encode(seed),
        address: key.address().to_string(),
    };
    write_private(path, &serde_json::to_string_pretty(&file)?)
        .with_context(|| format!("cannot write the new wallet {}", path.display()))?;
    if !quiet {
        eprintln!(
            "created a new wallet at {} (address {})",
            path.display(),
            key.address()
        );
    }
    Ok(key)
}

fn getrandom_seed(seed: &mut [u8; 32]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(seed))
        .context("cannot read /dev/urandom for a new wallet key")
}

/// Write a file readable only by its owner (for secrets).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_needs_a_ledger_url_and_refuses_unknown_keys() {
        let c: ConfigFile = serde_yaml_ng::from_str("ledger_url: http://a:1\n").unwrap();
        assert_eq!(c.wallet, PathBuf::from("wallet.json"));
        assert!(serde_yaml_ng::from_str::<ConfigFile>("ledger_url: x\nbogus: 1\n").is_err());
        // A config naming no ledger is refused when read; a list of replicas is enough.
        let dir = std::env::temp_dir().join(format!("floe-cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("floe.yaml");
        std::fs::write(&path, "wallet: x\n").unwrap();
        assert!(read_config_file(&path).is_err());
        std::fs::write(&path, "ledger_urls: [\"http://a:1\", \"http://b:1\"]\n").unwrap();
        let c = read_config_file(&path).unwrap();
        assert_eq!(c.ledger_urls.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_wallet_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/wallet.json");
        let a = load_or_create_wallet(&path, true).unwrap();
        let b = load_or_create_wallet(&path, true).unwrap();
        assert_eq!(a.address(), b.address());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
