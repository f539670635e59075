//! A small HTTP server for the roles' metrics and pages, on threads of its own.
//!
//! The roles are synchronous, so the server is too: [`tiny_http`] reads and parses the
//! requests on its own threads (one accepts, a small pool reads the connections), and one
//! thread of ours answers them, one at a time, by calling the role's handler: `/metrics` and
//! `/healthz` take microseconds, so one answering thread is plenty. The address is bound
//! before anything else happens, so a role told to listen where it cannot stops at once with
//! one line ([`Error::Listen`]) instead of after it has registered anywhere. A handler that
//! panics gets its request answered with a 500 and the server goes on. Dropping the
//! [`HttpServer`] (or [`HttpServer::stop`]) stops it and joins its thread.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use log::{debug, error, warn};

use crate::error::{Error, Result};

/// A request as the handler sees it: what was asked for, without its headers or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    query: String,
}

impl Request {
    /// A request for `url` (`/path?query`, as sent: not percent-decoded) with `method`.
    pub fn new(method: &str, url: &str) -> Request {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Request { method: method.to_owned(), path: path.to_owned(), query: query.to_owned() }
    }

    /// `GET`, `HEAD`, `POST`, ...
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path asked for, e.g. `/metrics` (as sent, not percent-decoded).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What follows the `?`, as sent (empty if nothing does).
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Whether it only reads: `GET` or `HEAD`.
    pub fn is_read(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// What the handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, `content_type` and `body`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type: content_type.to_owned(), body: body.into() }
    }

    /// 200 with a plain-text body.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200, "text/plain; charset=utf-8", body.into())
    }

    /// 200 with `value` as JSON (a 500 if it cannot be written as JSON: a bug).
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200, "application/json", body),
            Err(e) => Response::text(format!("cannot write the answer as JSON: {e}\n")).with_status(500),
        }
    }

    /// 404, saying what was not found.
    pub fn not_found(request: &Request) -> Response {
        Response::text(format!("nothing at {}\n", request.path())).with_status(404)
    }

    /// 405: the path exists but takes only `GET` and `HEAD`.
    pub fn method_not_allowed(request: &Request) -> Response {
        Response::text(format!("{} takes GET or HEAD, not {}\n", request.path(), request.method())).with_status(405)
    }

    /// The same response with another status.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }
}

/// Answers requests on one address until stopped or dropped.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    local_addr: SocketAddr,
    /// Set before unblocking the answering thread, so it tells a stop from a failure.
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer").field("local_addr", &self.local_addr).finish()
    }
}

impl HttpServer {
    /// Listens on `address` (`HOST:PORT`; see [`parse_address`]) and answers every request
    /// with `handler`, on threads of its own. An address that cannot be read is
    /// [`Error::Usage`]; one that cannot be bound (in use, not permitted, not this host's) is
    /// [`Error::Listen`].
    pub fn start(address: &str, handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Result<HttpServer> {
        let addr = parse_address(address)?;
        let listener = TcpListener::bind(addr).map_err(|e| Error::Listen { address: address.to_owned(), reason: reason(&e) })?;
        let local_addr = listener.local_addr().map_err(|e| Error::internal(format!("the address bound for {address}: {e}")))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::internal(format!("cannot serve HTTP on {address}: {e}")))?;
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, stopping) = (Arc::clone(&server), Arc::clone(&stopping));
            std::thread::Builder::new()
                .name("http".into())
                .spawn(move || answer_all(&server, &stopping, &handler))
                .map_err(|e| Error::internal(format!("cannot start the HTTP thread: {e}")))?
        };
        debug!("serving HTTP on {local_addr}");
        Ok(HttpServer { server, local_addr, stopping, thread: Some(thread) })
    }

    /// The address it listens on (with the port chosen, if `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops answering and waits for the answering thread to end (a request being answered
    /// is finished first).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if thread.join().is_err() {
            error!("the HTTP thread of {} panicked", self.local_addr);
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The answering thread: one request after another until stopped.
fn answer_all(server: &tiny_http::Server, stopping: &AtomicBool, handler: &(dyn Fn(&Request) -> Response + Sync)) {
    loop {
        let incoming = match server.recv() {
            Ok(incoming) => incoming,
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            Err(e) => {
                // tiny_http's accept thread ends on an error of accept(2): nothing more comes.
                error!("HTTP on {:?} stopped: {e}", server.server_addr().to_ip());
                return;
            }
        };
        let request = Request::new(incoming.method().as_str(), incoming.url());
        let response = match panic::catch_unwind(AssertUnwindSafe(|| handler(&request))) {
            Ok(response) => response,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                error!("answering {} {} failed: {what}", request.method(), request.path());
                Response::text("internal error\n").with_status(500)
            }
        };
        let mut answer = tiny_http::Response::from_data(response.body).with_status_code(response.status);
        match tiny_http::Header::from_bytes("Content-Type", response.content_type.as_bytes()) {
            Ok(header) => answer.add_header(header),
            Err(()) => warn!("not a Content-Type header value: {:?}", response.content_type),
        }
        if let Err(e) = incoming.respond(answer) {
            debug!("answering {} {}: {e}", request.method(), request.path());
        }
    }
}

/// Reads a listen address: `IP:PORT`, `[IPv6]:PORT`, `NAME:PORT` (the name's first address)
/// or `:PORT` (every IPv4 address of this host). Port 0 lets the system choose. Anything
/// else, or a name that does not resolve, is [`Error::Usage`].
pub fn parse_address(address: &str) -> Result<SocketAddr> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let unreadable = || Error::usage(format!("{address:?} is not a listen address: use HOST:PORT, e.g. 127.0.0.1:9720"));
    let (host, port) = address.rsplit_once(':').ok_or_else(unreadable)?;
    let port: u16 = port.parse().map_err(|_| unreadable())?;
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if host.contains(':') || host.contains('[') || host.contains(char::is_whitespace) {
        return Err(unreadable());
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| Error::usage(format!("cannot listen on {address:?}: {host:?} does not resolve to an address")))
}

/// Why an address could not be bound, in a few words.
fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => "the address is in use by another process".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".to_owned(),
        io::ErrorKind::AddrNotAvailable => "not an address of this host".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_or_refused_as_usage_errors() {
        assert_eq!(parse_address("127.0.0.1:9720").unwrap(), SocketAddr::from(([127, 0, 0, 1], 9720)));
        assert_eq!(parse_address("[::1]:0").unwrap().port(), 0);
        assert_eq!(parse_address(":9720").unwrap(), SocketAddr::from(([0, 0, 0, 0], 9720)));
        assert!(parse_address("localhost:9721").unwrap().ip().is_loopback());
        for bad in ["", "9720", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http", "::1:80", "a b:1"] {
            let e = parse_address(bad).expect_err(bad);
            assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{bad:?}: {e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn an_address_in_use_is_a_listen_error_naming_it() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let e = HttpServer::start(&address, |_| Response::text("x")).expect_err("in use");
        assert_eq!(e, Error::Listen { address: address.clone(), reason: "the address is in use by another process".into() });
        assert_eq!(e.exit_code(), crate::error::exit::LISTEN);
        assert!(e.to_string().starts_with(&format!("cannot listen on {address}: ")), "{e}");
    }

    #[test]
    fn requests_split_path_and_query() {
        let r = Request::new("GET", "/api/shops?x=1&y");
        assert_eq!((r.method(), r.path(), r.query()), ("GET", "/api/shops", "x=1&y"));
        assert!(r.is_read());
        assert_eq!(Request::new("POST", "/metrics").query(), "");
        assert!(!Request::new("POST", "/metrics").is_read());
    }

    #[test]
    fn responses_carry_their_type() {
        assert_eq!(Response::text("ok").content_type, "text/plain; charset=utf-8");
        let json = Response::json(&serde_json::json!({"a": 1}));
        assert_eq!((json.status, json.content_type.as_str(), json.body.as_slice()), (200, "application/json", &b"{\"a\":1}"[..]));
        assert_eq!(Response::not_found(&Request::new("GET", "/nope")).status, 404);
    }

    #[test]
    fn stop_joins_the_answering_thread() {
        let server = HttpServer::start("127.0.0.1:0", |_| Response::text("x")).unwrap();
        assert!(server.local_addr().port() > 0);
        server.stop();
    }
}
