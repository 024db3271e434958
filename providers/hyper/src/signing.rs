//! Hyper.sh's request signing, `HYPER-HMAC-SHA256`: AWS Signature Version 4 with Hyper's names
//! (`X-Hyper-Date`, `X-Hyper-Content-Sha256`, key prefix `HYPER`, service `hyper`, terminator
//! `hyper_request`).

#[cfg(test)]
mod tests;

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use sha2::{Digest, Sha256};

use crate::config::{Credentials, DEFAULT_HYPER_REGION};

const ALGORITHM: &str = "HYPER-HMAC-SHA256";
const DATE_HEADER: &str = "x-hyper-date";
const CONTENT_HASH_HEADER: &str = "x-hyper-content-sha256";

/// Adds `X-Hyper-Date`, `X-Hyper-Content-Sha256` and `Authorization` (and `Content-Type` when
/// missing) to a request about to be sent at `now`.
pub fn sign(
    credentials: &Credentials,
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
) {
    let date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    headers
        .entry(DATE_HEADER)
        .or_insert(HeaderValue::from_str(&date).expect("a date is a header value"));
    let body_hash = hex(&Sha256::digest(body));
    headers.insert(
        CONTENT_HASH_HEADER,
        HeaderValue::from_str(&body_hash).expect("hex is a header value"),
    );
    let date = headers[DATE_HEADER]
        .to_str()
        .unwrap_or_default()
        .to_string();
    let host = canonical_host(uri);
    let region = region_of(&host).unwrap_or(&credentials.region).to_string();
    let signed = signed_headers(headers, &host);
    let canonical_request = [
        method.as_str(),
        &canonical_path(uri.path()),
        &canonical_query(uri.query().unwrap_or_default()),
        &signed.block,
        &signed.names,
        &body_hash,
    ]
    .join("\n");
    let authorization = authorization(
        credentials,
        &date,
        &region,
        &signed.names,
        &canonical_request,
    );
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&authorization).expect("the authorization is a header value"),
    );
}

/// The `Authorization` value for a canonical request.
fn authorization(
    credentials: &Credentials,
    date: &str,
    region: &str,
    signed_header_names: &str,
    canonical_request: &str,
) -> String {
    let day = date.get(..8).unwrap_or(date);
    let scope = format!("{day}/{region}/hyper/hyper_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [day, region, "hyper", "hyper_request"].iter().fold(
        format!("HYPER{}", credentials.secret_key).into_bytes(),
        |key, part| hmac(&key, part.as_bytes()),
    );
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_header_names}, Signature={signature}",
        credentials.access_key
    )
}

struct SignedHeaders {
    /// `name:value\n` per header.
    block: String,
    /// The names joined with `;`.
    names: String,
}

/// `Content-Type`, `Content-Md5`, `Host` and every `X-Hyper-*` header, lowercased and sorted.
fn signed_headers(headers: &HeaderMap, host: &str) -> SignedHeaders {
    let mut signed: Vec<(String, String)> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| {
            matches!(*name, "content-type" | "content-md5") || name.starts_with("x-hyper-")
        })
        .map(|name| {
            let value = headers[name].to_str().unwrap_or_default().trim();
            (name.to_string(), value.to_string())
        })
        .collect();
    signed.push(("host".to_string(), host.to_string()));
    signed.sort();
    SignedHeaders {
        block: signed
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect(),
        names: signed
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// The URL's host, without a default port.
fn canonical_host(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        None | Some(80 | 443) => host.to_string(),
        Some(port) => format!("{host}:{port}"),
    }
}

/// `us-west-1` of `us-west-1.hyper.sh`.
fn region_of(host: &str) -> Option<&str> {
    let name = host.split(':').next().unwrap_or(host);
    name.strip_suffix(".hyper.sh")
        .filter(|region| !region.is_empty() && !region.contains('.'))
        .or((name == "hyper.sh").then_some(DEFAULT_HYPER_REGION))
}

/// Non-empty segments, each percent-encoded, joined without a leading or trailing slash.
fn canonical_path(path: &str) -> String {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(escape)
        .collect::<Vec<_>>()
        .join("/")
}

/// Keys sorted (values keep their order), each key and value escaped, spaces as `%20`.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded_pairs(query);
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", escape(key), escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// Percent-encodes everything but `A-Z a-z 0-9 - _ . ~`, with uppercase hex.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
