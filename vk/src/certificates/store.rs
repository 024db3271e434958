//! The certificate directory (`--cert-dir`), laid out as the kubelet's: each pair is one PEM file
//! (certificate, then key, mode 0600) named `PREFIX-YYYY-MM-DD-HH-MM-SS.pem`, and
//! `PREFIX-current.pem` is a symbolic link to the newest. Older files are kept.

use std::{
    fs,
    io::{self, Write as _},
    net::IpAddr,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use x509_parser::{extensions::GeneralName, prelude::FromDer as _};

use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the PEM data holds no certificate")]
    NoCertificate,
    #[error("the PEM data holds no usable private key")]
    NoKey(#[source] rustls::pki_types::pem::Error),
    #[error("the PEM data is invalid")]
    Pem(#[source] rustls::pki_types::pem::Error),
    #[error("the certificate cannot be parsed")]
    Parse(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
}

/// A certificate chain with its key, and what vk checks of the leaf.
#[derive(Debug)]
pub struct Pair {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl Pair {
    /// The chain and key as TLS uses them.
    pub fn certified_key(&self) -> Result<CertifiedKey, TlsError> {
        tls::certified_key(self.certs.clone(), self.key.clone_key())
    }

    /// Parses one PEM holding the chain and the key, in any order.
    pub fn from_pem(pem: &[u8]) -> Result<Pair, StoreError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::Pem)?;
        let leaf = certs.first().ok_or(StoreError::NoCertificate)?;
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(StoreError::NoKey)?;
        let (_, parsed) =
            x509_parser::certificate::X509Certificate::from_der(leaf).map_err(StoreError::Parse)?;
        let subject = parsed.subject();
        let strings = |attributes: Vec<&x509_parser::x509::AttributeTypeAndValue<'_>>| {
            attributes
                .into_iter()
                .filter_map(|a| a.as_str().ok().map(str::to_string))
                .collect::<Vec<_>>()
        };
        let (mut dns_names, mut ips) = (Vec::new(), Vec::new());
        if let Ok(Some(sans)) = parsed.subject_alternative_name() {
            for name in &sans.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*bytes).expect("4"))),
                        16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*bytes).expect("16"))),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        Ok(Pair {
            not_before: parsed.validity().not_before.timestamp(),
            not_after: parsed.validity().not_after.timestamp(),
            common_name: strings(subject.iter_common_name().collect())
                .into_iter()
                .next()
                .unwrap_or_default(),
            organizations: strings(subject.iter_organization().collect()),
            dns_names,
            ips,
            certs,
            key,
        })
    }
}

/// One kind of pair (`kubelet-client` or `kubelet-server`) in the certificate directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    prefix: &'static str,
}

impl Store {
    pub fn new(dir: &Path, prefix: &'static str) -> Store {
        Store {
            dir: dir.to_path_buf(),
            prefix,
        }
    }

    /// `PREFIX-current.pem`, the link to the newest pair.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}-current.pem", self.prefix))
    }

    /// The current pair; `None` if there is none yet.
    pub fn load(&self) -> Result<Option<Pair>, StoreError> {
        let path = self.current_path();
        match fs::read(&path) {
            Ok(pem) => Pair::from_pem(&pem).map(Some),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes a new pair (`cert_pem` then `key_pem`) and makes it the current one; the link is
    /// replaced by a rename, so a reader never finds it missing.
    pub fn save(&self, cert_pem: &str, key_pem: &str) -> Result<Pair, StoreError> {
        let mut pem = cert_pem.trim_end().to_string();
        pem.push('\n');
        pem.push_str(key_pem);
        let pair = Pair::from_pem(pem.as_bytes())?;
        let write_error = |path: &Path| {
            let path = path.display().to_string();
            move |source| StoreError::Write { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(write_error(&self.dir))?;
        let file = self
            .write_new_file(&pem)
            .map_err(|(file, source)| StoreError::Write {
                path: file.display().to_string(),
                source,
            })?;
        let updated = self.dir.join(format!("{}-updated.pem", self.prefix));
        match fs::remove_file(&updated) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(write_error(&updated)(error));
            }
            _ => {}
        }
        std::os::unix::fs::symlink(&file, &updated).map_err(write_error(&updated))?;
        let current = self.current_path();
        fs::rename(&updated, &current).map_err(write_error(&current))?;
        Ok(pair)
    }

    /// Writes `pem` to a file of its own, named after the time like the kubelet's. A pair saved
    /// in the same second gets a numbered name rather than overwriting a file the current link
    /// may still point at, so a crash mid-write never leaves the current pair broken.
    fn write_new_file(&self, pem: &str) -> Result<PathBuf, (PathBuf, io::Error)> {
        let stamp = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d-%H-%M-%S");
        for attempt in 0u32.. {
            let name = match attempt {
                0 => format!("{}-{stamp}.pem", self.prefix),
                n => format!("{}-{stamp}-{n}.pem", self.prefix),
            };
            let file = self.dir.join(name);
            let written = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .and_then(|mut f| f.write_all(pem.as_bytes()).and_then(|()| f.sync_all()));
            match written {
                Ok(()) => return Ok(file),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err((file, error)),
            }
        }
        unreachable!("a directory cannot hold every numbered name")
    }
}

#[cfg(test)]
mod tests;
