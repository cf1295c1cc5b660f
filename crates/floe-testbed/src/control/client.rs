//! The control API's client: finds a running testbed by its `control.json` and asks it.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::{
    Added, CONTROL_VERSION, ControlError, ControlFile, ErrorBody, NodeRow, Removed, WeightBody,
    WeightChanged, control_path,
};

/// How long the client waits for an answer: adding a node registers it and opens its store.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long it waits for the testbed to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of an answer that is not JSON is quoted in an error.
const QUOTED_CHARS: usize = 300;

/// A client of the control API of the testbed in one directory.
pub struct ControlClient {
    dir: String,
    file: String,
    control: ControlFile,
    http: reqwest::Client,
}

impl ControlClient {
    /// The testbed running in `data_dir`, found by its `control.json`.
    pub fn open(data_dir: &Path) -> Result<Self, ControlError> {
        let dir = data_dir.display().to_string();
        let path = control_path(data_dir);
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ControlError::NoTestbed { dir });
            }
            Err(source) => return Err(ControlError::Read { file, source }),
        };
        let control: ControlFile =
            serde_json::from_str(&text).map_err(|e| ControlError::BadFile {
                file: file.clone(),
                reason: e.to_string(),
            })?;
        if control.version != CONTROL_VERSION {
            return Err(ControlError::Version {
                file,
                found: control.version,
            });
        }
        let http = floe_tls::http_client(
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(ANSWER_TIMEOUT),
        )
        .map_err(|e| ControlError::Client(e.to_string()))?;
        Ok(Self {
            dir,
            file,
            control,
            http,
        })
    }

    /// The URL the control API serves on.
    pub fn url(&self) -> &str {
        &self.control.url
    }

    /// `GET /v1/nodes`.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, ControlError> {
        self.call(Method::GET, "/v1/nodes", None, "the node list")
            .await
    }

    /// `POST /v1/nodes`: add a node of this weight.
    pub async fn add_node(&self, weight: u64) -> Result<Added, ControlError> {
        let body = WeightBody {
            weight: Some(weight),
        };
        self.call(Method::POST, "/v1/nodes", Some(body), "an added node")
            .await
    }

    /// `DELETE /v1/nodes/{i}`.
    pub async fn remove_node(&self, index: usize) -> Result<Removed, ControlError> {
        let path = format!("/v1/nodes/{index}");
        self.call(Method::DELETE, &path, None, "a removed node")
            .await
    }

    /// `POST /v1/nodes/{i}/weight`.
    pub async fn set_weight(
        &self,
        index: usize,
        weight: u64,
    ) -> Result<WeightChanged, ControlError> {
        let path = format!("/v1/nodes/{index}/weight");
        let body = WeightBody {
            weight: Some(weight),
        };
        self.call(Method::POST, &path, Some(body), "a weight change")
            .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<WeightBody>,
        what: &'static str,
    ) -> Result<T, ControlError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.control.url))
            .bearer_auth(&self.control.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Err(ControlError::LeftOver {
                    dir: self.dir.clone(),
                    file: self.file.clone(),
                    url: self.control.url.clone(),
                });
            }
            Err(e) => return Err(self.no_answer(e)),
        };
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.no_answer(e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ControlError::BadAnswer {
                dir: self.dir.clone(),
                what,
                reason: e.to_string(),
            });
        }
        let reason = serde_json::from_slice::<ErrorBody>(&bytes).map_or_else(
            |_| {
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(QUOTED_CHARS)
                    .collect()
            },
            |b| b.error,
        );
        let reason = if reason.trim().is_empty() {
            format!("{status} with no reason given")
        } else {
            reason
        };
        if status == StatusCode::UNAUTHORIZED {
            return Err(ControlError::Unauthorized {
                dir: self.dir.clone(),
                file: self.file.clone(),
                reason,
            });
        }
        Err(ControlError::Refused {
            status: status.as_u16(),
            reason,
        })
    }

    fn no_answer(&self, e: reqwest::Error) -> ControlError {
        ControlError::NoAnswer {
            dir: self.dir.clone(),
            reason: e.to_string(),
        }
    }
}
