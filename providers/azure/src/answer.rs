//! ARM's answers: status, headers and body, what they say (`Retry-After`, JSON bodies, ARM error
//! bodies) and the errors of ARM calls; shared by the client (`arm`) and the operations it
//! follows (`operation`).

use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::de::DeserializeOwned;

use crate::{auth::AuthError, model::CloudError};

#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot reach azure resource manager at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// ARM's answer, with the code and message of its error body.
    #[error("azure answered {method} {path} with HTTP {status}: {message}")]
    Status {
        method: Method,
        path: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("azure answered {path} with a body that cannot be read")]
    Body {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the operation on {path} failed: {message}")]
    Operation { path: String, message: String },
}

impl ArmError {
    /// Whether the call may succeed later unchanged (throttled, ARM down, network).
    pub fn is_transient(&self) -> bool {
        match self {
            ArmError::Auth(error) => error.is_transient(),
            ArmError::Transport { .. } => true,
            ArmError::Status { status, .. } => *status == 429 || *status >= 500,
            ArmError::Body { .. } | ArmError::Operation { .. } => false,
        }
    }

    /// Whether ARM said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ArmError::Status { status: 404, .. })
    }
}

/// An answer: status, headers and body bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

/// `Retry-After` as seconds (the only form ARM sends for these calls).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The path of a URL (or of a path relative to ARM's endpoint) without its query, for messages.
pub fn display_path(url: &str) -> String {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => url,
    };
    let path = path.split('?').next().unwrap_or(path);
    format!("/{}", path.trim_start_matches('/'))
}

pub fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, ArmError> {
    serde_json::from_slice(body).map_err(|source| ArmError::Body {
        path: display_path(path),
        source,
    })
}

/// The error of a non-2xx answer, with ARM's `{error: {code, message}}` when it sent one.
pub fn status_error(method: &Method, path: &str, answer: &Answer) -> ArmError {
    let body: Option<CloudError> = serde_json::from_slice(&answer.body).ok();
    let (code, message) = match body {
        Some(cloud) if !cloud.error.code.is_empty() || !cloud.error.message.is_empty() => {
            (cloud.error.code.clone(), cloud.error.to_string())
        }
        _ => (
            String::new(),
            answer
                .status
                .canonical_reason()
                .unwrap_or("no error body")
                .to_string(),
        ),
    };
    ArmError::Status {
        method: method.clone(),
        path: path.to_string(),
        status: answer.status.as_u16(),
        code,
        message,
    }
}
