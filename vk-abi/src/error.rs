//! Errors a provider reports, with kinds the host maps onto HTTP and Kubernetes semantics.

use crate::raw::{
    ERROR_INVALID_INPUT, ERROR_NOT_FOUND, ERROR_OTHER, ERROR_UNAVAILABLE, ERROR_UNSUPPORTED,
    RawError,
};

/// What went wrong, as far as the host needs to know to react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The pod, container or object does not exist in the backend (HTTP 404).
    NotFound,
    /// The request or the pod cannot be accepted as it is (HTTP 400, `ProviderFailed`).
    InvalidInput,
    /// The provider does not implement this call (HTTP 501).
    Unsupported,
    /// The backend is unreachable or overloaded for now; retry later (HTTP 503).
    Unavailable,
    /// Anything else (HTTP 500).
    Other,
}

impl ErrorKind {
    pub(crate) fn code(self) -> u32 {
        match self {
            ErrorKind::NotFound => ERROR_NOT_FOUND,
            ErrorKind::InvalidInput => ERROR_INVALID_INPUT,
            ErrorKind::Unsupported => ERROR_UNSUPPORTED,
            ErrorKind::Unavailable => ERROR_UNAVAILABLE,
            ErrorKind::Other => ERROR_OTHER,
        }
    }

    pub(crate) fn from_code(code: u32) -> Self {
        match code {
            ERROR_NOT_FOUND => ErrorKind::NotFound,
            ERROR_INVALID_INPUT => ErrorKind::InvalidInput,
            ERROR_UNSUPPORTED => ErrorKind::Unsupported,
            ERROR_UNAVAILABLE => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        }
    }
}

/// An error from a provider: a kind and a message meant for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
}

impl From<RawError> for ProviderError {
    fn from(raw: RawError) -> Self {
        ProviderError::new(ErrorKind::from_code(raw.kind), raw.message.into_string())
    }
}

impl From<ProviderError> for RawError {
    fn from(error: ProviderError) -> Self {
        RawError {
            kind: error.kind.code(),
            message: error.message.into(),
        }
    }
}

/// JSON that does not decode is the sender's fault.
impl From<serde_json::Error> for ProviderError {
    fn from(error: serde_json::Error) -> Self {
        ProviderError::invalid_input(format!("malformed JSON across the provider ABI: {error}"))
    }
}

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;
