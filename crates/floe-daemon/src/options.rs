//! The daemon's settings. [`DaemonOptions`] derives `clap::Args`, so a binary flattens it into
//! its command line (`#[command(flatten)]`); the flags and defaults are Walrus's.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::DaemonError;

/// Which half of the API to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Reads only: `GET /v1/blobs/…`.
    Aggregator,
    /// Writes only: `PUT /v1/blobs` (and `DELETE` when enabled).
    Publisher,
    /// Both.
    Daemon,
}

impl Mode {
    pub fn reads(self) -> bool {
        matches!(self, Mode::Aggregator | Mode::Daemon)
    }
    pub fn writes(self) -> bool {
        matches!(self, Mode::Publisher | Mode::Daemon)
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::Aggregator => "aggregator",
            Mode::Publisher => "publisher",
            Mode::Daemon => "daemon",
        }
    }
}

/// The HMAC algorithm of publisher JWTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum JwtAlgorithm {
    #[value(name = "HS256")]
    #[serde(rename = "HS256")]
    Hs256,
    #[value(name = "HS384")]
    #[serde(rename = "HS384")]
    Hs384,
    #[value(name = "HS512")]
    #[serde(rename = "HS512")]
    Hs512,
}

impl JwtAlgorithm {
    /// The name in a JWT header's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Hs384 => "HS384",
            JwtAlgorithm::Hs512 => "HS512",
        }
    }
}

/// Everything that shapes the daemon's behaviour (the client's own settings, such as the ledger
/// URL and the wallet, live in the [`floe_client::Client`] it is given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct DaemonOptions {
    /// Which routes to serve: aggregator (reads), publisher (writes) or daemon (both).
    #[arg(long, value_enum, default_value_t = Mode::Daemon)]
    pub mode: Mode,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:31415")]
    pub bind_address: SocketAddr,
    /// Also serve `GET /metrics` on this address (it is always served on the main one).
    #[arg(long)]
    pub metrics_address: Option<SocketAddr>,
    /// Largest `PUT /v1/blobs` body, in KiB; larger bodies get 413.
    #[arg(long, default_value_t = 10_240)]
    pub max_body_size: u64,
    /// Largest `PUT /v1/quilts` body (all files and the form encoding), in KiB; larger
    /// bodies get 413.
    #[arg(long, default_value_t = 102_400)]
    pub max_quilt_body_size: u64,
    /// Return every tag of a quilt patch as a response header (otherwise only tags named in
    /// --allowed-headers).
    #[arg(long)]
    pub allow_quilt_patch_tags_in_response: bool,
    /// Attribute and tag names that may become response headers.
    #[arg(long, num_args = 1.., default_values_t = default_allowed_headers())]
    pub allowed_headers: Vec<String>,
    /// Largest blob (or byte range) the aggregator returns, in bytes; larger ones get 403.
    #[arg(long)]
    pub max_blob_size: Option<u64>,
    /// Stores running at once.
    #[arg(long, default_value_t = 8)]
    pub publisher_max_concurrent_requests: usize,
    /// Stores waiting for a slot; beyond it, requests get 429.
    #[arg(long, default_value_t = 8)]
    pub publisher_max_buffer_size: usize,
    /// Reads running at once.
    #[arg(long, default_value_t = 256)]
    pub aggregator_max_concurrent_requests: usize,
    /// Reads waiting for a slot (at most 10 s, then 503); beyond it, requests get 429.
    /// (Walrus's default is 320; a waiting read costs only its connection here, and identical
    /// reads share one.)
    #[arg(long, default_value_t = 2048)]
    pub aggregator_max_buffer_size: usize,
    /// Require `Authorization: Bearer <JWT>` on writes, signed with this HMAC secret (a `0x`
    /// prefix means hex; otherwise the UTF-8 bytes are the key).
    #[arg(long, env = "FLOE_JWT_DECODE_SECRET", hide_env_values = true)]
    pub jwt_decode_secret: Option<String>,
    /// The JWT signature algorithm.
    #[arg(long, value_enum, ignore_case = true, default_value_t = JwtAlgorithm::Hs256)]
    pub jwt_algorithm: JwtAlgorithm,
    /// If positive, tokens must carry `iat` and live at most this many seconds (`exp − iat`).
    #[arg(long, default_value_t = 0)]
    pub jwt_expiring_sec: u64,
    /// Check the upload against the token's claims (`epochs`, `max_epochs`, `size`,
    /// `max_size`, `send_object_to`).
    #[arg(long)]
    pub jwt_verify_upload: bool,
    /// Serve `DELETE /v1/blobs/{blob_id}` and `DELETE /v1/blobs/by-object-id/{object_id}`,
    /// which delete blob objects owned by the publisher's wallet. Off by default: on an open
    /// publisher, anyone could delete what anyone stored through it.
    #[arg(long)]
    pub enable_delete: bool,
    /// Longest wait for the next piece of a request body, in milliseconds; a client that
    /// declares a body and stops sending it gets 408.
    #[arg(long, default_value_t = 30_000)]
    pub body_idle_timeout_ms: u64,
    /// Do not serve the web dashboard at `/dashboard` (served by default; read-only unless
    /// this daemon stores blobs without requiring a JWT).
    #[arg(long)]
    #[serde(default)]
    pub no_dashboard: bool,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Daemon,
            bind_address: SocketAddr::from(([127, 0, 0, 1], 31415)),
            metrics_address: None,
            max_body_size: 10_240,
            max_quilt_body_size: 102_400,
            allow_quilt_patch_tags_in_response: false,
            allowed_headers: default_allowed_headers(),
            max_blob_size: None,
            publisher_max_concurrent_requests: 8,
            publisher_max_buffer_size: 8,
            aggregator_max_concurrent_requests: 256,
            aggregator_max_buffer_size: 2048,
            jwt_decode_secret: None,
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_expiring_sec: 0,
            jwt_verify_upload: false,
            enable_delete: false,
            body_idle_timeout_ms: 30_000,
            no_dashboard: false,
        }
    }
}

/// The headers a blob attribute or a quilt patch tag may set, by default (as Walrus).
pub fn default_allowed_headers() -> Vec<String> {
    [
        "content-type",
        "authorization",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-location",
        "link",
    ]
    .map(String::from)
    .to_vec()
}

impl DaemonOptions {
    /// The body limit in bytes.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_size.saturating_mul(1024)
    }

    /// The quilt body limit in bytes.
    pub fn max_quilt_body_bytes(&self) -> u64 {
        self.max_quilt_body_size.saturating_mul(1024)
    }

    /// Refuse settings that cannot work.
    pub fn validate(&self) -> Result<(), DaemonError> {
        let bad = |m: &str| Err(DaemonError::Options(m.to_string()));
        if self.max_body_size == 0 {
            return bad("--max-body-size must be at least 1 KiB");
        }
        if usize::try_from(self.max_body_bytes()).is_err() {
            return bad("--max-body-size is larger than this machine can address");
        }
        if self.max_quilt_body_size == 0 {
            return bad("--max-quilt-body-size must be at least 1 KiB");
        }
        if usize::try_from(self.max_quilt_body_bytes()).is_err() {
            return bad("--max-quilt-body-size is larger than this machine can address");
        }
        if self.publisher_max_concurrent_requests == 0
            || self.aggregator_max_concurrent_requests == 0
        {
            return bad("the maximum numbers of concurrent requests must be at least 1");
        }
        match &self.jwt_decode_secret {
            Some(s) if s.is_empty() => return bad("--jwt-decode-secret must not be empty"),
            None if self.jwt_verify_upload || self.jwt_expiring_sec > 0 => {
                return bad("--jwt-verify-upload and --jwt-expiring-sec need --jwt-decode-secret");
            }
            _ => {}
        }
        if self.jwt_decode_secret.is_some() && !self.mode.writes() {
            return bad("JWT authentication applies to writes; the aggregator serves none");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        daemon: DaemonOptions,
    }

    #[test]
    fn flags_parse_and_defaults_match_the_struct_default() {
        let d = Cli::try_parse_from(["floe"]).unwrap().daemon;
        assert_eq!(d, DaemonOptions::default());
        let d = Cli::try_parse_from([
            "floe",
            "--mode",
            "publisher",
            "--bind-address",
            "0.0.0.0:8080",
            "--max-body-size",
            "64",
            "--jwt-decode-secret",
            "s3cret",
            "--jwt-algorithm",
            "hs512",
            "--jwt-verify-upload",
            "--enable-delete",
        ])
        .unwrap()
        .daemon;
        assert_eq!(d.mode, Mode::Publisher);
        assert_eq!(d.max_body_bytes(), 64 * 1024);
        assert_eq!(d.jwt_algorithm, JwtAlgorithm::Hs512);
        assert!(d.jwt_verify_upload && d.enable_delete);
        d.validate().unwrap();
    }

    #[test]
    fn unusable_settings_are_refused() {
        let base = DaemonOptions::default();
        for bad in [
            DaemonOptions {
                max_body_size: 0,
                ..base.clone()
            },
            DaemonOptions {
                publisher_max_concurrent_requests: 0,
                ..base.clone()
            },
            DaemonOptions {
                jwt_verify_upload: true,
                ..base.clone()
            },
            DaemonOptions {
                jwt_decode_secret: Some(String::new()),
                ..base.clone()
            },
            DaemonOptions {
                mode: Mode::Aggregator,
                jwt_decode_secret: Some("x".into()),
                ..base.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
