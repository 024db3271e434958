//! The kubelet API's responses: the body type and the plain, JSON and provider-error answers
//! that the router, the log handler and the streaming upgrades all give.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

#[cfg(test)]
mod tests;

/// A response body: whole, or streamed.
pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

pub fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut message = message.into();
    if !message.ends_with('\n') {
        message.push('\n');
    }
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(message))
        .expect("a valid response")
}

pub fn json(value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(full(body))
            .expect("a valid response"),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// A provider error as the kubelet would answer it.
pub fn provider_error(error: &vk_abi::ProviderError) -> Response<Body> {
    let status = match error.kind {
        vk_abi::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        vk_abi::ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        vk_abi::ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        vk_abi::ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        vk_abi::ErrorKind::Other => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(status, error.message.clone())
}
