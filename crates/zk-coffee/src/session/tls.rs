//! TLS to ZooKeeper: the CA that signs the servers' certificates and, optionally, our own
//! certificate (a client identity, which a server with `ssl.clientAuth=need` demands and its
//! `x509` scheme can name in ACLs). The client crate runs the TLS (rustls, through
//! `zookeeper-client`'s `tls` feature); this module reads the PEM files once, up front, so
//! that a missing or garbled file is a usage error naming the file, and explains a failed
//! connection.
//!
//! The client retries a failing handshake quietly until its deadline, so "why" must be asked
//! separately: [`Tls::diagnose`] makes one handshake of its own with the same settings and
//! names what went wrong (the server's certificate is not signed by our CA, has expired, is
//! for another name; the server refused our certificate; the server does not speak TLS), and
//! [`speaks_tls`] tells a plaintext client that the server it could not reach wants TLS. Both
//! run only after a connection failed, within a short budget.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use zookeeper_client as zkc;

use crate::error::{Error, Result};

/// A TLS stream to one server (what [`Tls::connect`] returns).
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// TLS settings for ZooKeeper connections, read and checked from PEM files.
#[derive(Clone)]
pub struct Tls {
    ca_file: PathBuf,
    ca_pem: String,
    identity: Option<Identity>,
    /// The same settings for our own handshakes (diagnosis, the manager's `mntr`).
    config: Arc<ClientConfig>,
}

/// Our own certificate and its key, as PEM.
#[derive(Clone)]
struct Identity {
    cert_file: PathBuf,
    cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cert = self.identity.as_ref().map(|i| i.cert_file.display().to_string());
        write!(f, "Tls(ca: {}, cert: {cert:?})", self.ca_file.display())
    }
}

/// Reads a PEM file named by a flag: a usage error naming `what` and the file if it cannot be.
fn read_pem(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::usage(format!("cannot read the {what} {}: {e}", path.display())))
}

/// Refuses a private key file that its group or others may read (as the credentials file).
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| Error::usage(format!("cannot read the TLS key file (--tls-key) {shown}: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::usage(format!("the TLS key file (--tls-key) {shown} is readable by others: run chmod 600 {shown}")));
    }
    Ok(())
}

/// The certificates of a PEM file, at least one.
fn certificates(pem: &str, path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(Error::usage(format!("the {what} {} holds no PEM certificate", path.display()))),
        Err(e) => Err(Error::usage(format!("the {what} {} is not valid PEM: {e}", path.display()))),
    }
}

impl Tls {
    /// Reads the CA certificates (`ca`, PEM) that sign the servers' certificates and, if
    /// given, our certificate and its private key (`identity`, PEM each). Every problem with a
    /// file (missing, unreadable, not PEM, no certificate or key in it, a key that is not the
    /// certificate's) is a usage error naming it.
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Tls> {
        let ca_pem = read_pem(ca, "TLS CA file (--tls-ca)")?;
        let mut roots = RootCertStore::empty();
        for cert in certificates(&ca_pem, ca, "TLS CA file (--tls-ca)")? {
            roots.add(cert).map_err(|e| {
                Error::usage(format!("the TLS CA file (--tls-ca) {} holds an unusable certificate: {e}", ca.display()))
            })?;
        }
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let (config, identity) = match identity {
            None => (builder.with_no_client_auth(), None),
            Some((cert_file, key_file)) => {
                let cert_pem = read_pem(cert_file, "TLS certificate file (--tls-cert)")?;
                owner_only(key_file)?;
                let key_pem = read_pem(key_file, "TLS key file (--tls-key)")?;
                let chain = certificates(&cert_pem, cert_file, "TLS certificate file (--tls-cert)")?;
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
                    Error::usage(format!("the TLS key file (--tls-key) {} holds no usable private key: {e}", key_file.display()))
                })?;
                let config = builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::usage(format!(
                        "the TLS key file (--tls-key) {} does not fit the certificate {}: {e}",
                        key_file.display(),
                        cert_file.display()
                    ))
                })?;
                (config, Some(Identity { cert_file: cert_file.to_owned(), cert_pem, key_pem }))
            }
        };
        Ok(Tls { ca_file: ca.to_owned(), ca_pem, identity, config: Arc::new(config) })
    }

    /// The CA file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Our certificate's file, if we present one.
    pub fn cert_file(&self) -> Option<&Path> {
        self.identity.as_ref().map(|i| i.cert_file.as_path())
    }

    /// The client crate's options for these settings.
    pub(super) fn options(&self) -> Result<zkc::TlsOptions> {
        let bad = |e: zkc::Error| Error::usage(format!("unusable TLS settings ({}): {e}", self.ca_file.display()));
        let options = zkc::TlsOptions::new().with_pem_ca(&self.ca_pem).map_err(bad)?;
        match &self.identity {
            None => Ok(options),
            Some(identity) => options.with_pem_identity(&identity.cert_pem, &identity.key_pem).map_err(bad),
        }
    }

    /// A TLS connection to `server` (`host:port`), the handshake done, within `timeout` for
    /// connecting and as much again for the handshake; the stream's read and write timeouts
    /// are left at `timeout`.
    pub fn connect(&self, server: &str, timeout: Duration) -> std::result::Result<TlsStream, String> {
        let (host, sock) = tcp_connect(server, timeout)?;
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
        let conn = ClientConnection::new(Arc::clone(&self.config), name).map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| self.explain(host, &e))?;
        }
        Ok(stream)
    }

    /// Why a TLS connection to `server` fails, if it does: one handshake of our own, then
    /// `ruok` (a server that refuses our certificate says so only after the handshake, in
    /// TLS 1.3), all within `budget`. `None`: the handshake works, or the server is not
    /// reachable at all (then it is not a TLS problem).
    pub fn diagnose(&self, server: &str, budget: Duration) -> Option<String> {
        let deadline = Instant::now() + budget;
        let mut stream = match self.connect(server, budget) {
            Ok(stream) => stream,
            Err(why) if why.starts_with(UNREACHABLE) => return None,
            Err(why) => return Some(why),
        };
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
        let _ = stream.sock.set_read_timeout(Some(left));
        if let Err(e) = stream.write_all(b"ruok").and_then(|()| stream.flush()) {
            return tls_error(&e).map(|_| self.explain(host_of(server), &e));
        }
        // Any answer (imok, or none for a server that does not allow ruok) is no TLS problem.
        let mut reply = Vec::new();
        match Read::by_ref(&mut stream).take(16).read_to_end(&mut reply) {
            Err(e) => tls_error(&e).map(|_| self.explain(host_of(server), &e)),
            Ok(_) => None,
        }
    }

    /// One line for a failed handshake with `host`.
    fn explain(&self, host: &str, e: &std::io::Error) -> String {
        let Some(tls) = tls_error(e) else {
            return match e.kind() {
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    "the server closed the connection during the TLS handshake: is this a plaintext port \
                     (clientPort)? TLS needs the server's secureClientPort"
                        .to_owned()
                }
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    "the server did not finish the TLS handshake in time: is this a plaintext port (clientPort)? \
                     TLS needs the server's secureClientPort"
                        .to_owned()
                }
                _ => format!("the TLS handshake failed: {e}"),
            };
        };
        let ca = self.ca_file.display();
        match tls {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    format!("the server's certificate is not signed by the CA in {ca} (--tls-ca): wrong CA file? ({tls})")
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("the server's certificate has expired ({tls})")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!("the server's certificate is not valid yet: is this host's clock right? ({tls})")
                }
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    format!("the server's certificate is not for {host}: connect by a name or address it lists ({tls})")
                }
                _ => format!("the server's certificate was refused ({tls})"),
            },
            rustls::Error::AlertReceived(alert) => match &self.identity {
                None => format!(
                    "the server refused the connection ({alert:?}): does it want a client certificate \
                     (--tls-cert and --tls-key)?"
                ),
                Some(identity) => format!(
                    "the server refused our client certificate {} ({alert:?}): is it signed by a CA the server \
                     trusts, and still valid?",
                    identity.cert_file.display()
                ),
            },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
                "the server does not speak TLS here ({tls}): is this a plaintext port (clientPort)? TLS needs \
                 the server's secureClientPort"
            ),
            other => format!("the TLS handshake failed: {other}"),
        }
    }
}

/// The start of [`tcp_connect`]'s errors: not a TLS problem.
const UNREACHABLE: &str = "cannot connect";

/// A TCP connection to `server` (`host:port`) within `timeout`, with read and write timeouts
/// of `timeout`; the host part (brackets removed) comes with it, for the TLS server name.
fn tcp_connect(server: &str, timeout: Duration) -> std::result::Result<(&str, TcpStream), String> {
    let host = host_of(server);
    let addrs: Vec<_> =
        server.to_socket_addrs().map_err(|e| format!("{UNREACHABLE} to {server}: cannot resolve it: {e}"))?.collect();
    let mut last = format!("{UNREACHABLE} to {server}: it resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(sock) => {
                sock.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
                sock.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
                return Ok((host, sock));
            }
            Err(e) => last = format!("{UNREACHABLE} to {server}: {e}"),
        }
    }
    Err(last)
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The TLS error inside an I/O error from rustls, if it is one.
fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// Whether the server at `server` (`host:port`) answers a TLS hello with a certificate, within
/// `budget`: asked when a plaintext client could not connect, to tell the user that the
/// server wants TLS. The certificate is only noticed, never trusted: the handshake is broken
/// off there.
pub fn speaks_tls(server: &str, budget: Duration) -> bool {
    let Ok((host, mut sock)) = tcp_connect(server, budget) else { return false };
    let Ok(name) = ServerName::try_from(host.to_owned()) else { return false };
    let builder = ClientConfig::builder();
    let provider = Arc::clone(builder.crypto_provider());
    let seen = Arc::new(NoticeCertificate { seen: AtomicBool::new(false), provider });
    let config = builder.dangerous().with_custom_certificate_verifier(seen.clone()).with_no_client_auth();
    let Ok(mut conn) = ClientConnection::new(Arc::new(config), name) else { return false };
    let deadline = Instant::now() + budget;
    while conn.is_handshaking() && Instant::now() < deadline {
        if conn.complete_io(&mut sock).is_err() {
            break;
        }
    }
    seen.seen.load(Ordering::SeqCst)
}

/// A certificate verifier that notes that a certificate came, and refuses it.
#[derive(Debug)]
struct NoticeCertificate {
    seen: AtomicBool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for NoticeCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.seen.store(true, Ordering::SeqCst);
        Err(rustls::Error::General("only looking whether the server speaks TLS".into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("only looking whether the server speaks TLS".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("only looking whether the server speaks TLS".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zk-coffee-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn usage_message(r: Result<Tls>) -> String {
        match r {
            Err(Error::Usage(msg)) => msg,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn bad_pem_files_are_usage_errors_naming_the_file() {
        let missing = Path::new("/nonexistent/ca.pem");
        let msg = usage_message(Tls::from_files(missing, None));
        assert!(msg.contains("cannot read the TLS CA file (--tls-ca) /nonexistent/ca.pem"), "{msg}");
        let garbage = temp_file("garbage.pem", "this is not a certificate\n");
        let msg = usage_message(Tls::from_files(&garbage, None));
        assert!(msg.contains("holds no PEM certificate") && msg.contains("garbage.pem"), "{msg}");
        let broken = temp_file("broken.pem", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        let msg = usage_message(Tls::from_files(&broken, None));
        assert!(msg.contains("broken.pem"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn hosts_lose_their_port_and_brackets() {
        assert_eq!(host_of("127.0.0.1:2281"), "127.0.0.1");
        assert_eq!(host_of("[::1]:2281"), "::1");
        assert_eq!(host_of("zk1.example:2281"), "zk1.example");
    }

    #[test]
    fn nobody_listening_is_not_a_tls_problem() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        assert!(!speaks_tls(&format!("127.0.0.1:{port}"), Duration::from_millis(500)));
    }
}
