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
//!
//! A long-lived answer (the manager page's event stream) is a [`Response::stream`]: it gets a
//! thread of its own, so it never holds up the answering thread, and at most
//! [`MAX_STREAMS`] are open at once (more are answered 503). tiny_http reads each connection
//! on a thread of its pool and starts another when all are busy, so an open stream costs it
//! one blocked thread too, bounded by the same cap. A stream ends when the client goes (a
//! write fails), when its function returns, or soon after the server stops. tiny_http keeps
//! the socket open until the client closes its end (its pool thread waits there for another
//! request), so a stream that ends on our side should say so in its own protocol first (the
//! page's stream sends a `bye`, and the page closes and reconnects).
//!
//! (A little over 400 lines with its tests, a third of it: the server, its two kinds of
//! answer and the address parsing belong together.)

use std::io;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use log::{debug, error, warn};

use crate::error::{Error, Result};

/// A request as the handler sees it: what was asked for and with what credential, without
/// its other headers or its body.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    query: String,
    /// The `Authorization` header, if any (never shown by `Debug`).
    authorization: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Request {
    /// A request for `url` (`/path?query`, as sent: not percent-decoded) with `method`.
    pub fn new(method: &str, url: &str) -> Request {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Request { method: method.to_owned(), path: path.to_owned(), query: query.to_owned(), authorization: None }
    }

    /// The same request with this `Authorization` header.
    pub fn with_authorization(mut self, value: &str) -> Request {
        self.authorization = Some(value.to_owned());
        self
    }

    /// The `Authorization` header sent, if any.
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
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

/// How many streams ([`Response::stream`]) may be open at once: each holds two threads (ours
/// and one of tiny_http's pool) for as long as its client stays.
pub const MAX_STREAMS: usize = 16;

/// The function that writes a streamed body: it writes (and flushes) to the connection until
/// a write fails, it has nothing more to say, or the flag (the server is stopping) is set.
pub type StreamFn = dyn Fn(&mut dyn Write, &AtomicBool) -> io::Result<()> + Send + Sync;

/// A streamed body ([`Response::stream`]).
#[derive(Clone)]
pub struct Stream(Arc<StreamFn>);

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

impl PartialEq for Stream {
    fn eq(&self, other: &Stream) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Stream {}

/// What the handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// `Cache-Control`, if any.
    pub cache_control: Option<&'static str>,
    /// A body written as it comes, instead of `body` (see [`Response::stream`]).
    pub stream: Option<Stream>,
    /// Any other headers (e.g. `WWW-Authenticate`), as `(name, value)`.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// A response with `status`, `content_type` and `body`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
            cache_control: None,
            stream: None,
            headers: Vec::new(),
        }
    }

    /// 200 with a body that `write` writes as it comes, on a thread of its own, over a
    /// connection closed at its end (`Connection: close`, so the body needs no length): a
    /// stream of Server-Sent Events, say. `write` should flush what it writes.
    pub fn stream(
        content_type: &str,
        write: impl Fn(&mut dyn Write, &AtomicBool) -> io::Result<()> + Send + Sync + 'static,
    ) -> Response {
        Response { stream: Some(Stream(Arc::new(write))), ..Response::new(200, content_type, Vec::new()) }
    }

    /// The same response with a `Cache-Control` header.
    pub fn with_cache_control(mut self, value: &'static str) -> Response {
        self.cache_control = Some(value);
        self
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
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
fn answer_all(server: &tiny_http::Server, stopping: &Arc<AtomicBool>, handler: &(dyn Fn(&Request) -> Response + Sync)) {
    let streams = Arc::new(AtomicUsize::new(0));
    let streams = &streams;
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
        let mut request = Request::new(incoming.method().as_str(), incoming.url());
        if let Some(header) = incoming.headers().iter().find(|h| h.field.equiv("Authorization")) {
            request = request.with_authorization(header.value.as_str());
        }
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
        if let Some(stream) = response.stream.clone().filter(|_| incoming.method() != &tiny_http::Method::Head) {
            if streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
                streams.fetch_sub(1, Ordering::SeqCst);
                let busy = format!("{MAX_STREAMS} streams are open already: try again later\n");
                let _ = incoming.respond(tiny_http::Response::from_string(busy).with_status_code(503));
            } else {
                open_stream(incoming, &response.content_type, stream, stopping, streams);
            }
            continue;
        }
        let mut answer = tiny_http::Response::from_data(response.body).with_status_code(response.status);
        match tiny_http::Header::from_bytes("Content-Type", response.content_type.as_bytes()) {
            Ok(header) => answer.add_header(header),
            Err(()) => warn!("not a Content-Type header value: {:?}", response.content_type),
        }
        let cache_control = response.cache_control.map(|value| ("Cache-Control".to_owned(), value.to_owned()));
        for (name, value) in cache_control.iter().chain(&response.headers) {
            match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                Ok(header) => answer.add_header(header),
                Err(()) => warn!("not a {name} header value: {value:?}"),
            }
        }
        if let Err(e) = incoming.respond(answer) {
            debug!("answering {} {}: {e}", request.method(), request.path());
        }
    }
}

/// Gives a streamed response a thread of its own (its slot in `streams` is taken already, and
/// given back when it ends).
fn open_stream(
    incoming: tiny_http::Request,
    content_type: &str,
    stream: Stream,
    stopping: &Arc<AtomicBool>,
    streams: &Arc<AtomicUsize>,
) {
    let head =
        format!("HTTP/1.1 200 OK\r\nContent-Type: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", content_type);
    let (stopping, count) = (Arc::clone(stopping), Arc::clone(streams));
    let url = incoming.url().to_owned();
    let started = std::thread::Builder::new().name("http-stream".into()).spawn(move || {
        // The raw connection: the head above, then whatever the stream writes, then close.
        let mut out = incoming.into_writer();
        let result = out.write_all(head.as_bytes()).and_then(|()| out.flush()).and_then(|()| (stream.0)(&mut out, &stopping));
        if let Err(e) = result {
            debug!("the stream of {url} ended: {e}");
        }
        count.fetch_sub(1, Ordering::SeqCst);
    });
    if let Err(e) = started {
        // The request went with the closure: tiny_http answers a dropped request with a 500.
        error!("cannot start a thread for a stream: {e}");
        streams.fetch_sub(1, Ordering::SeqCst);
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

    fn get(addr: SocketAddr, path: &str) -> std::net::TcpStream {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        conn
    }

    fn read_until(conn: &mut std::net::TcpStream, what: &str) -> String {
        use std::io::Read;
        let mut seen = Vec::new();
        let mut buf = [0; 1024];
        while !String::from_utf8_lossy(&seen).contains(what) {
            let n = conn.read(&mut buf).unwrap_or_else(|e| panic!("{e} before {what:?}: {}", String::from_utf8_lossy(&seen)));
            assert!(n > 0, "closed before {what:?}: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    #[test]
    fn streams_run_on_threads_of_their_own_up_to_the_cap() {
        let server = HttpServer::start("127.0.0.1:0", |r| match r.path() {
            "/stream" => Response::stream("text/event-stream", |out, stopping| {
                out.write_all(b"data: one\n\n")?;
                out.flush()?;
                while !stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                out.write_all(b"data: bye\n\n")?;
                out.flush()
            }),
            _ => Response::text("plain"),
        })
        .unwrap();
        let addr = server.local_addr();
        // One after another: tiny_http's pool can queue a connection accepted while another
        // is being handed to a waking thread behind connections that stay open (its
        // `waiting_tasks` still counts the thread being woken), and these never close.
        let mut streams = Vec::new();
        for _ in 0..MAX_STREAMS {
            let mut stream = get(addr, "/stream");
            let seen = read_until(&mut stream, "data: one\n\n");
            assert!(seen.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"), "{seen}");
            streams.push(stream);
        }
        let seen = read_until(&mut get(addr, "/plain"), "plain");
        assert!(seen.starts_with("HTTP/1.1 200"), "answered while the streams are open: {seen}");
        let seen = read_until(&mut get(addr, "/stream"), "streams are open already");
        assert!(seen.starts_with("HTTP/1.1 503"), "{seen}");
        server.stop();
        for stream in &mut streams {
            read_until(stream, "data: bye\n\n");
        }
    }
}
