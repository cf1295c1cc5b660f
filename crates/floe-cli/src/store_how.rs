//! How long and how to store: the lifetime options shared by `store` and `store-quilt`.

use anyhow::{Context, Result, bail};
use floe_client::{Lifetime, StoreOptions};

/// How long and how to store: shared by `store` and `store-quilt`.
#[derive(clap::Args)]
pub struct StoreHowArgs {
    /// Store for this many epochs from now, or `max`.
    #[arg(long, conflicts_with_all = ["end_epoch", "earliest_expiry_time"])]
    pub epochs: Option<String>,
    /// Store until this epoch (exclusive).
    #[arg(long, conflicts_with = "earliest_expiry_time")]
    pub end_epoch: Option<u32>,
    /// Store until the first epoch that starts at or after this time, so the blob expires no
    /// earlier than it: RFC 3339 (`2027-03-20T15:00:00Z`) or `2027-03-20 15:00:00` (UTC).
    #[arg(long)]
    pub earliest_expiry_time: Option<String>,
    /// Make it permanent: it cannot be deleted before it expires.
    #[arg(long)]
    pub permanent: bool,
    /// Make it deletable (the default; kept for compatibility).
    #[arg(long, conflicts_with = "permanent")]
    pub deletable: bool,
    /// Store even if it is already certified for long enough.
    #[arg(long)]
    pub force: bool,
    /// Wrap each newly created blob object into a shared blob that anyone may extend and
    /// nobody may delete (see `floe share`).
    #[arg(long)]
    pub share: bool,
}

impl StoreHowArgs {
    /// The client's store options (an error says how to give the lifetime).
    pub fn options(&self) -> Result<StoreOptions> {
        Ok(StoreOptions {
            lifetime: match &self.earliest_expiry_time {
                Some(t) => Lifetime::NotBefore(expiry_time_ms(t)?),
                None => lifetime(&self.epochs, self.end_epoch)?,
            },
            deletable: !self.permanent,
            force: self.force,
        })
    }
}

/// `--earliest-expiry-time` as Unix milliseconds; it must lie in the future.
fn expiry_time_ms(text: &str) -> Result<u64> {
    let at = humantime::parse_rfc3339_weak(text.trim()).with_context(|| {
        format!("--earliest-expiry-time takes a UTC time like 2027-03-20T15:00:00Z or `2027-03-20 15:00:00`, not `{text}`")
    })?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let now = std::time::SystemTime::now();
    if at <= now {
        bail!("--earliest-expiry-time {text} is in the past; give a time in the future");
    }
    Ok(ms)
}

/// The lifetime from `--epochs N|max` or `--end-epoch E`.
fn lifetime(epochs: &Option<String>, end_epoch: Option<u32>) -> Result<Lifetime> {
    Ok(match (epochs, end_epoch) {
        (Some(e), _) if e == "max" => Lifetime::Max,
        (Some(e), _) => {
            Lifetime::Epochs(e.parse().with_context(|| {
                format!("--epochs takes a number of epochs or `max`, not `{e}`")
            })?)
        }
        (None, Some(e)) => Lifetime::EndEpoch(e),
        (None, None) => bail!(
            "say how long to store: --epochs N (epochs from now), --epochs max, --end-epoch E or --earliest-expiry-time TIME"
        ),
    })
}
