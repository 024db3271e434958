//! CertificateSigningRequests: what vk asks for (the kubelet's subject, SANs and usages for each
//! signer), and waiting until the cluster issues, denies or fails it.

use std::{net::IpAddr, time::Duration};

use k8s_openapi::{
    ByteString,
    api::certificates::v1::{
        CertificateSigningRequest, CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Api, Client, api::PostParams, runtime::wait::await_condition};

use vk_abi::error_chain;

use super::store::Pair;

/// The Organization of every kubelet certificate.
const NODES_GROUP: &str = "system:nodes";

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot make a key or a CSR")]
    Generate(#[source] rcgen::Error),
    #[error("the API server refused the credentials ({code}): {message}")]
    Refused { code: u16, message: String },
    #[error("cannot create the CSR")]
    Create(#[source] kube::Error),
    #[error("CSR {name} was deleted before it was issued")]
    Deleted { name: String },
    #[error("CSR {name} was not issued within {}", humantime::format_duration(*.limit))]
    TimedOut { name: String, limit: Duration },
    #[error("CSR {name} was denied ({reason}): {message}")]
    Denied {
        name: String,
        reason: String,
        message: String,
    },
    #[error("CSR {name} failed ({reason}): {message}")]
    Failed {
        name: String,
        reason: String,
        message: String,
    },
}

/// Which of the kubelet's two certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// vk's identity towards the API server.
    Client,
    /// The kubelet API's serving certificate.
    Serving,
}

impl Signer {
    pub fn name(self) -> &'static str {
        match self {
            Signer::Client => "kubernetes.io/kube-apiserver-client-kubelet",
            Signer::Serving => "kubernetes.io/kubelet-serving",
        }
    }

    /// The usages the signer accepts for an ECDSA key (an RSA key would add key encipherment).
    pub fn usages(self) -> [&'static str; 2] {
        match self {
            Signer::Client => ["digital signature", "client auth"],
            Signer::Serving => ["digital signature", "server auth"],
        }
    }

    /// The file prefix in the certificate directory.
    pub fn prefix(self) -> &'static str {
        match self {
            Signer::Client => "kubelet-client",
            Signer::Serving => "kubelet-server",
        }
    }

    /// For log lines.
    pub fn what(self) -> &'static str {
        match self {
            Signer::Client => "client certificate",
            Signer::Serving => "serving certificate",
        }
    }
}

/// What a certificate must say: `CN=system:node:NODE`, `O=system:nodes`, and for serving
/// certificates the node's addresses as SANs (client certificates may carry none).
#[derive(Debug, Clone)]
pub struct Template {
    pub signer: Signer,
    pub node_name: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl Template {
    pub fn client(node_name: &str) -> Template {
        Template {
            signer: Signer::Client,
            node_name: node_name.to_string(),
            dns_names: Vec::new(),
            ips: Vec::new(),
        }
    }

    /// A serving certificate for the addresses vk puts on the Node: its InternalIP and its
    /// Hostname (the node name).
    pub fn serving(node_name: &str, ips: &[IpAddr]) -> Template {
        Template {
            signer: Signer::Serving,
            node_name: node_name.to_string(),
            dns_names: vec![node_name.to_string()],
            ips: ips.to_vec(),
        }
    }

    pub fn common_name(&self) -> String {
        format!("system:node:{}", self.node_name)
    }

    /// Why `pair` does not serve for this template at `now` (Unix seconds), if it does not.
    /// Extra SANs are fine, as for the kubelet.
    pub fn mismatch(&self, pair: &Pair, now: i64) -> Option<String> {
        if now >= pair.not_after {
            Some("it has expired".into())
        } else if pair.common_name != self.common_name() {
            Some(format!("it is for {}", pair.common_name))
        } else if pair.organizations != [NODES_GROUP] {
            Some(format!("its organizations are {:?}", pair.organizations))
        } else if let Some(dns) = self.dns_names.iter().find(|d| !pair.dns_names.contains(d)) {
            Some(format!("it lacks the DNS name {dns}"))
        } else {
            let ip = self.ips.iter().find(|ip| !pair.ips.contains(ip))?;
            Some(format!("it lacks the IP address {ip}"))
        }
    }

    /// A fresh ECDSA P-256 key and the PEM CSR for it.
    pub fn csr(&self) -> Result<(rcgen::KeyPair, String), RequestError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(RequestError::Generate)?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, NODES_GROUP);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, self.common_name());
        params.subject_alt_names = self
            .dns_names
            .iter()
            .map(|dns| {
                rcgen::string::Ia5String::try_from(dns.as_str()).map(rcgen::SanType::DnsName)
            })
            .chain(self.ips.iter().map(|ip| Ok(rcgen::SanType::IpAddress(*ip))))
            .collect::<Result<_, _>>()
            .map_err(RequestError::Generate)?;
        let pem = params
            .serialize_request(&key)
            .and_then(|csr| csr.pem())
            .map_err(RequestError::Generate)?;
        Ok((key, pem))
    }

    /// The CSR object: `generateName` as the kubelet's rotation (`csr-`) and bootstrap
    /// (`node-csr-`) requests, and `expiration_seconds` when a shorter lifetime is wanted.
    pub fn object(
        &self,
        pem: &str,
        bootstrap: bool,
        expiration_seconds: Option<i32>,
    ) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: ObjectMeta {
                generate_name: Some(if bootstrap { "node-csr-" } else { "csr-" }.into()),
                ..ObjectMeta::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(pem.as_bytes().to_vec()),
                signer_name: self.signer.name().into(),
                usages: Some(self.signer.usages().map(String::from).to_vec()),
                expiration_seconds,
                ..CertificateSigningRequestSpec::default()
            },
            status: None,
        }
    }
}

/// Where a CSR stands.
enum Outcome {
    Pending,
    Issued(Vec<u8>),
    Refused {
        denied: bool,
        reason: String,
        message: String,
    },
}

fn outcome(status: Option<&CertificateSigningRequestStatus>) -> Outcome {
    let Some(status) = status else {
        return Outcome::Pending;
    };
    let refusal = status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True");
    if let Some(condition) = refusal {
        return Outcome::Refused {
            denied: condition.type_ == "Denied",
            reason: condition.reason.clone().unwrap_or_default(),
            message: condition.message.clone().unwrap_or_default(),
        };
    }
    match &status.certificate {
        Some(certificate) if !certificate.0.is_empty() => Outcome::Issued(certificate.0.clone()),
        _ => Outcome::Pending,
    }
}

/// A request in flight: created, not yet answered.
#[derive(Debug)]
pub struct Pending {
    api: Api<CertificateSigningRequest>,
    pub name: String,
    key: rcgen::KeyPair,
}

/// Creates the CSR for `template` as the user of `client`.
pub async fn create(
    client: Client,
    template: &Template,
    bootstrap: bool,
    expiration_seconds: Option<i32>,
) -> Result<Pending, RequestError> {
    let (key, pem) = template.csr()?;
    let api = Api::<CertificateSigningRequest>::all(client);
    let created = api
        .create(
            &PostParams::default(),
            &template.object(&pem, bootstrap, expiration_seconds),
        )
        .await
        .map_err(|error| match error {
            kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
                RequestError::Refused {
                    code: status.code,
                    message: status.message,
                }
            }
            error => RequestError::Create(error),
        })?;
    Ok(Pending {
        api,
        name: created.metadata.name.unwrap_or_default(),
        key,
    })
}

impl Pending {
    /// Waits up to `limit` for the certificate; returns it and the key, both PEM.
    pub async fn issued(self, limit: Duration) -> Result<(String, String), RequestError> {
        let name = self.name.clone();
        let answered = |csr: Option<&CertificateSigningRequest>| match csr {
            None => true,
            Some(csr) => !matches!(outcome(csr.status.as_ref()), Outcome::Pending),
        };
        let deadline = tokio::time::Instant::now() + limit;
        // A watch cut short (the client certificate rotated, the API server restarted) is
        // resumed: asking again would need another approval.
        let csr = loop {
            let watched = await_condition(self.api.clone(), &name, answered);
            match tokio::time::timeout_at(deadline, watched).await {
                Err(_) => return Err(RequestError::TimedOut { name, limit }),
                Ok(Ok(csr)) => {
                    break csr.ok_or_else(|| RequestError::Deleted { name: name.clone() })?;
                }
                Ok(Err(error)) => {
                    log::debug!("watching CSR {name} again: {}", error_chain(&error));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        match outcome(csr.status.as_ref()) {
            Outcome::Issued(certificate) => Ok((
                String::from_utf8_lossy(&certificate).into_owned(),
                self.key.serialize_pem(),
            )),
            Outcome::Refused {
                denied: true,
                reason,
                message,
            } => Err(RequestError::Denied {
                name,
                reason,
                message,
            }),
            Outcome::Refused {
                reason, message, ..
            } => Err(RequestError::Failed {
                name,
                reason,
                message,
            }),
            Outcome::Pending => Err(RequestError::Deleted { name }),
        }
    }
}

#[cfg(test)]
mod tests;
