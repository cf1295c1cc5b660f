//! TLS between Floe's clients and storage nodes, as Walrus does it.
//!
//! A node has a **network key** (secp256r1) besides its BLS protocol key. Its public half is
//! registered on the ledger ([`NetworkPublicKey`]). The node serves HTTPS with a certificate
//! whose key is that network key: a self-signed one made at start ([`NetworkKeyPair::
//! self_signed_certificate`]), or one the operator supplies. A client accepts the handshake when
//! the certificate's key equals the key the ledger lists for that node ([`pinned_client_config`]);
//! names, issuers and dates do not matter, so nodes need no certificate authority.
//!
//! Both ends offer HTTP/2 and HTTP/1.1 by ALPN.
#![forbid(unsafe_code)]

use std::sync::Arc;

pub use floe_crypto::NetworkPublicKey;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

/// ALPN protocols offered, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// DER prefix of a P-256 `SubjectPublicKeyInfo`: SEQUENCE, the algorithm (id-ecPublicKey,
/// prime256v1), then the BIT STRING header of a 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Errors of key handling and TLS set-up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("not a P-256 network key in PKCS#8 PEM: {0}")]
    BadKey(String),
    #[error("cannot make a certificate for the network key: {0}")]
    Certificate(String),
    #[error(
        "the certificate's key is not the node's network key (the key file and the certificate do not belong together)"
    )]
    CertificateKeyMismatch,
    #[error("not a PEM certificate chain: {0}")]
    BadCertificate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The process's TLS provider (aws-lc-rs, the one reqwest uses too).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A node's network key pair.
pub struct NetworkKeyPair {
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for NetworkKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NetworkKeyPair({})", self.public_key())
    }
}

impl NetworkKeyPair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| TlsError::BadKey(e.to_string()))?;
        Ok(Self { key })
    }

    /// Read a PKCS#8 PEM private key (the format Walrus's key files use for this key).
    pub fn from_pem(pem: &str) -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::from_pem(pem).map_err(|e| TlsError::BadKey(e.to_string()))?;
        if !key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256) {
            return Err(TlsError::BadKey("the key is not on secp256r1".into()));
        }
        Ok(Self { key })
    }

    /// The PKCS#8 PEM encoding.
    pub fn to_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The public key as the ledger registers it.
    pub fn public_key(&self) -> NetworkPublicKey {
        NetworkPublicKey::from_uncompressed(self.key.public_key_raw())
            .expect("a P-256 key pair's public key is an uncompressed point")
    }

    /// A self-signed certificate for this key, valid for `hosts` (names or IP addresses) and
    /// for `<first 4 key bytes in hex>.network.walrus.alt`, Walrus's name for the key.
    pub fn self_signed_certificate(
        &self,
        hosts: &[String],
    ) -> Result<CertificateDer<'static>, TlsError> {
        let public = self.public_key();
        let tag: String = public.as_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut names = vec![format!("{tag}.network.walrus.alt")];
        names.extend(hosts.iter().filter(|h| !h.is_empty()).cloned());
        let params = rcgen::CertificateParams::new(names)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let cert = params
            .self_signed(&self.key)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        Ok(cert.der().clone())
    }

    fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

/// Read a PEM certificate chain (end entity first), e.g. one issued by a public CA for the
/// node's network key.
pub fn certificate_chain_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::BadCertificate("no CERTIFICATE block".into()));
    }
    Ok(chain)
}

/// The network key inside a certificate, if it is a P-256 key.
pub fn certificate_key(cert: &CertificateDer<'_>) -> Option<NetworkPublicKey> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let point = spki.as_ref().strip_prefix(&P256_SPKI_PREFIX[..])?;
    NetworkPublicKey::from_uncompressed(point).ok()
}

/// The server side: `chain` (or, when `None`, a self-signed certificate for `hosts`) with the
/// network key. A supplied chain must carry the network key, so that pinning clients accept it.
pub fn server_config(
    key: &NetworkKeyPair,
    chain: Option<Vec<CertificateDer<'static>>>,
    hosts: &[String],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = match chain {
        Some(chain) => {
            if chain.first().and_then(certificate_key) != Some(key.public_key()) {
                return Err(TlsError::CertificateKeyMismatch);
            }
            chain
        }
        None => vec![key.self_signed_certificate(hosts)?],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key.private_key_der())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The client side for one node: the handshake succeeds only if the node proves possession of
/// the private half of `key` (its certificate's key is `key`, and the handshake signature
/// verifies with it).
pub fn pinned_client_config(key: NetworkPublicKey) -> rustls::ClientConfig {
    pinned_client_config_any(vec![key])
}

/// Like [`pinned_client_config`], accepting any of `keys`: a node's registered key and, while
/// the ledger still honours it after a change, the one it replaced. Panics on no keys.
pub fn pinned_client_config_any(keys: Vec<NetworkPublicKey>) -> rustls::ClientConfig {
    assert!(!keys.is_empty(), "a pinned client needs a key");
    let provider = provider();
    let verifier = PinnedKey {
        keys,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config
}

/// Accepts exactly the certificates whose key is one of the pinned ones.
#[derive(Debug)]
struct PinnedKey {
    keys: Vec<NetworkPublicKey>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match certificate_key(end_entity) {
            Some(k) if self.keys.contains(&k) => Ok(ServerCertVerified::assertion()),
            Some(other) => Err(rustls::Error::General(format!(
                "the node's certificate has network key {other}; the ledger registers {}{}",
                self.keys[0],
                match self.keys.get(1) {
                    Some(previous) => format!(" (and still honours the replaced {previous})"),
                    None => String::new(),
                }
            ))),
            None => Err(rustls::Error::General(
                "the node's certificate does not carry a P-256 network key".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether this machine has certificate authorities to trust (its CA bundle). A `FROM scratch`
/// container has none.
pub fn system_roots_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty())
}

/// How long a client keeps an idle connection for reuse. Floe's servers close a kept-alive
/// HTTP/1.1 connection after 30 s without a request (their header-read deadline): a client that
/// kept it as long could send a request just as the server closes it, and lose that request
/// to a bare "connection closed". reqwest's default is 90 s.
pub const POOL_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Build an HTTP client from `builder`, with idle connections dropped after
/// [`POOL_IDLE_TIMEOUT`] (whatever `builder` said). reqwest's default TLS set-up fails on a
/// machine without a CA bundle, even for a client that only ever speaks plain HTTP; there the
/// client trusts no certificate authority instead: plain HTTP and HTTPS to pinned node keys
/// (clients of their own) work, HTTPS checked against public CAs does not.
pub fn http_client(builder: reqwest::ClientBuilder) -> reqwest::Result<reqwest::Client> {
    let builder = builder.pool_idle_timeout(POOL_IDLE_TIMEOUT);
    if system_roots_available() {
        builder.build()
    } else {
        builder.tls_certs_only(Vec::new()).build()
    }
}

#[cfg(test)]
mod tests;
