use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

#[test]
fn the_key_survives_pem_and_its_certificate_carries_it() {
    let key = NetworkKeyPair::generate().unwrap();
    let again = NetworkKeyPair::from_pem(&key.to_pem()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    let cert = key
        .self_signed_certificate(&["127.0.0.1".into(), "node-1.example".into()])
        .unwrap();
    assert_eq!(certificate_key(&cert), Some(key.public_key()));
    assert!(matches!(
        NetworkKeyPair::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        Err(TlsError::BadKey(_))
    ));
}

#[test]
fn a_supplied_certificate_must_carry_the_network_key() {
    let key = NetworkKeyPair::generate().unwrap();
    let other = NetworkKeyPair::generate().unwrap();
    let foreign = other.self_signed_certificate(&[]).unwrap();
    assert!(matches!(
        server_config(&key, Some(vec![foreign]), &[]),
        Err(TlsError::CertificateKeyMismatch)
    ));
    let own = key.self_signed_certificate(&[]).unwrap();
    assert!(server_config(&key, Some(vec![own]), &[]).is_ok());
}

/// Serve one TLS connection that answers "pong" to "ping"; returns the address.
async fn echo_server(key: &NetworkKeyPair) -> std::net::SocketAddr {
    let config = server_config(key, None, &["127.0.0.1".into()]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4];
                    if tls.read_exact(&mut buf).await.is_ok() && &buf == b"ping" {
                        let _ = tls.write_all(b"pong").await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(
    addr: std::net::SocketAddr,
    pinned: NetworkPublicKey,
) -> std::io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    connect_any(addr, vec![pinned]).await
}

async fn connect_any(
    addr: std::net::SocketAddr,
    pinned: Vec<NetworkPublicKey>,
) -> std::io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pinned_client_config_any(pinned)));
    let tcp = TcpStream::connect(addr).await?;
    // The name is irrelevant to a pinned key: any name works.
    let name = ServerName::try_from("any-name.invalid").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
    tls.write_all(b"ping").await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok((answer, alpn))
}

#[tokio::test]
async fn a_client_pinned_to_the_registered_key_connects_and_speaks_h2() {
    let key = NetworkKeyPair::generate().unwrap();
    let addr = echo_server(&key).await;
    let (answer, alpn) = connect(addr, key.public_key()).await.unwrap();
    assert_eq!(answer, b"pong");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn a_node_with_another_key_is_refused() {
    let key = NetworkKeyPair::generate().unwrap();
    let impostor = NetworkKeyPair::generate().unwrap();
    let addr = echo_server(&impostor).await;
    let err = connect(addr, key.public_key()).await.unwrap_err();
    assert!(
        err.to_string().contains("the ledger registers"),
        "unexpected error: {err}"
    );
}

/// While a key change overlaps, a client pins both keys: the node is reached before its
/// restart (old key) and after it (new key); any third key is still refused.
#[tokio::test]
async fn during_a_key_change_both_keys_are_accepted_and_no_other() {
    let old = NetworkKeyPair::generate().unwrap();
    let new = NetworkKeyPair::generate().unwrap();
    let pinned = vec![new.public_key(), old.public_key()];
    for serving in [&old, &new] {
        let addr = echo_server(serving).await;
        let (answer, _) = connect_any(addr, pinned.clone()).await.unwrap();
        assert_eq!(answer, b"pong");
    }
    let impostor = NetworkKeyPair::generate().unwrap();
    let addr = echo_server(&impostor).await;
    let err = connect_any(addr, pinned).await.unwrap_err();
    assert!(
        err.to_string().contains("still honours the replaced"),
        "unexpected error: {err}"
    );
}
