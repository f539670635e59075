//! Network faults on loopback: one TCP proxy in front of a server that can cut, mute and
//! swallow, for real on the wire.
//!
//! While open, a [`Proxy`] forwards every connection both ways and counts the requests clients
//! send by operation code ([`Proxy::requests`]). Then:
//! - [`cut`](Proxy::cut) closes every forwarded connection and refuses new ones until
//!   [`open`](Proxy::open): for the clients a network outage, while the server behind keeps
//!   running and expires the sessions it stops hearing from;
//! - [`mute`](Proxy::mute) holds back (loses nothing of) what clients send, while what the
//!   server sends still arrives, until [`unmute`](Proxy::unmute);
//! - [`swallow_after`](Proxy::swallow_after) arms it with a byte pattern: the first client
//!   request containing it is still forwarded and applied, but from then on nothing the server
//!   sends on that connection reaches the client (it stays open, like a partition): the
//!   connection loss that makes a sequential create ambiguous. Later connections are
//!   forwarded normally.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::process::lock;

/// ZooKeeper's operation code of `getACL` (`ZooDefs.OpCode.getACL`).
pub const GET_ACL: i32 = 6;

/// A running proxy; stops accepting, and closes what it forwards, when dropped.
pub struct Proxy {
    port: u16,
    state: Arc<State>,
}

struct State {
    /// Connections are refused (and the forwarded ones were closed).
    closed: AtomicBool,
    /// What clients send is held back (not lost) until unmuted.
    muted: AtomicBool,
    /// The proxy was dropped.
    stop: AtomicBool,
    /// Both sockets of every forwarded connection, to cut them.
    conns: Mutex<Vec<TcpStream>>,
    /// Swallow the replies on the connection whose client next sends this.
    pattern: Mutex<Option<Vec<u8>>>,
    /// How many connections have had their replies swallowed so far.
    swallowed: AtomicUsize,
    /// Requests clients sent, by operation code (each connection's connect request left out).
    requests: Mutex<HashMap<i32, usize>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            closed: AtomicBool::new(false),
            muted: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            pattern: Mutex::new(None),
            swallowed: AtomicUsize::new(0),
            requests: Mutex::new(HashMap::new()),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if accept_state.closed.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let mut conns = lock(&accept_state.conns);
                conns.retain(|s| s.peer_addr().is_ok());
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    conns.push(c);
                    conns.push(s);
                }
                drop(conns);
                pipe(client, server, Arc::clone(&accept_state));
            }
        });
        Proxy { port, state }
    }

    /// The proxy's port, to put in a connect string.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        for s in lock(&self.state.conns).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn open(&self) {
        self.state.closed.store(false, Ordering::SeqCst);
    }

    /// Holds back what clients send, on every connection, new ones included: their requests
    /// (and pings) go unanswered, while what the server sends them (replies to earlier
    /// requests, watch events) still arrives. Nothing is dropped: [`unmute`](Proxy::unmute)
    /// sends it on.
    pub fn mute(&self) {
        self.state.muted.store(true, Ordering::SeqCst);
    }

    /// Forwards what clients send again, starting with what was held back.
    pub fn unmute(&self) {
        self.state.muted.store(false, Ordering::SeqCst);
    }

    /// Swallows the server's replies on the first connection whose client sends `pattern`
    /// from now on (the request itself still reaches the server).
    pub fn swallow_after(&self, pattern: &[u8]) {
        *lock(&self.state.pattern) = Some(pattern.to_vec());
    }

    /// How many connections had their replies swallowed.
    pub fn swallowed(&self) -> usize {
        self.state.swallowed.load(Ordering::SeqCst)
    }

    /// How many requests with operation code `op` (e.g. [`GET_ACL`]) clients have sent so far,
    /// on every connection.
    pub fn requests(&self, op: i32) -> usize {
        lock(&self.state.requests).get(&op).copied().unwrap_or(0)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Splits what a client sends into ZooKeeper frames (a 4-byte length, then the frame) and
/// counts the requests by operation code (the second int of a request's header, after the xid).
/// The first frame of a connection is its connect request, which has no header.
#[derive(Default)]
struct Frames {
    pending: Vec<u8>,
    connected: bool,
}

impl Frames {
    fn feed(&mut self, bytes: &[u8], requests: &Mutex<HashMap<i32, usize>>) {
        self.pending.extend_from_slice(bytes);
        loop {
            let Some(len) = self.pending.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize) else {
                return;
            };
            if self.pending.len() < 4 + len {
                return;
            }
            let frame: Vec<u8> = self.pending.drain(..4 + len).skip(4).collect();
            if !self.connected {
                self.connected = true;
            } else if let Some(op) = frame.get(4..8) {
                let op = i32::from_be_bytes([op[0], op[1], op[2], op[3]]);
                *lock(requests).entry(op).or_default() += 1;
            }
        }
    }
}

/// Forwards one connection both ways, each on a thread, as the module docs say.
fn pipe(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let swallowing = Arc::new(AtomicBool::new(false));
    let (mut client_r, mut server_w) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
    let (up_swallowing, up_state) = (Arc::clone(&swallowing), Arc::clone(&state));
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        let mut frames = Frames::default();
        loop {
            let n = match client_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            frames.feed(&buf[..n], &up_state.requests);
            let mut pattern = lock(&up_state.pattern);
            if let Some(p) = pattern.as_ref() {
                if buf[..n].windows(p.len()).any(|w| w == p.as_slice()) {
                    *pattern = None;
                    up_swallowing.store(true, Ordering::SeqCst);
                    up_state.swallowed.fetch_add(1, Ordering::SeqCst);
                }
            }
            drop(pattern);
            while up_state.muted.load(Ordering::SeqCst) && !up_state.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(5));
            }
            if server_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (mut server_r, mut client_w) = (server, client);
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match server_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if swallowing.load(Ordering::SeqCst) {
                continue;
            }
            if client_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        // A swallowing connection stays open to its client, as a partition would leave it.
        if !swallowing.load(Ordering::SeqCst) {
            let _ = client_w.shutdown(Shutdown::Both);
        }
    });
}
