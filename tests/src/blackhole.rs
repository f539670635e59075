//! A loopback TCP proxy that can swallow a server's answers: the client's request reaches
//! ZooKeeper and is applied, but the reply never comes back. That is the connection loss that
//! makes a sequential create ambiguous, injected for real on the wire.
//!
//! The proxy forwards every connection both ways. Once armed with a byte pattern, the first
//! client request containing it is still forwarded to the server, but from then on nothing the
//! server sends on that connection reaches the client (the connection stays open, like a
//! partition). Later connections are forwarded normally.
//!
//! It also counts the requests clients send by operation code ([`Blackhole::requests`]), so a
//! test can tell how many calls a client made.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// ZooKeeper's operation code of `getACL` (`ZooDefs.OpCode.getACL`).
pub const GET_ACL: i32 = 6;

/// A running proxy; stops accepting when dropped (open connections end with their peers).
pub struct Blackhole {
    port: u16,
    state: Arc<State>,
}

struct State {
    /// Swallow replies after a request containing this pattern.
    pattern: Mutex<Option<Vec<u8>>>,
    /// How many connections have been cut off so far.
    swallowed: AtomicUsize,
    /// Requests clients sent, by operation code (the connect request of each connection left out).
    requests: Mutex<HashMap<i32, usize>>,
    stop: AtomicBool,
}

impl Blackhole {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            pattern: Mutex::new(None),
            swallowed: AtomicUsize::new(0),
            requests: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                pipe(client, server, Arc::clone(&accept_state));
            }
        });
        Blackhole { port, state }
    }

    /// The proxy's port, to put in a connect string.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Swallows the server's replies on the first connection whose client sends `pattern`.
    pub fn arm(&self, pattern: &[u8]) {
        *self.state.pattern.lock().expect("pattern") = Some(pattern.to_vec());
    }

    /// How many connections were cut off.
    pub fn swallowed(&self) -> usize {
        self.state.swallowed.load(Ordering::SeqCst)
    }

    /// How many requests with operation code `op` (e.g. [`GET_ACL`]) clients have sent so far,
    /// on every connection.
    pub fn requests(&self, op: i32) -> usize {
        self.state.requests.lock().expect("requests").get(&op).copied().unwrap_or(0)
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
                *requests.lock().expect("requests").entry(op).or_default() += 1;
            }
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Forwards one connection both ways; see the module docs for when replies are swallowed.
fn pipe(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let cut = Arc::new(AtomicBool::new(false));
    let (mut client_r, mut server_w) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
    let (up_cut, up_state) = (Arc::clone(&cut), Arc::clone(&state));
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        let mut frames = Frames::default();
        loop {
            let n = match client_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            frames.feed(&buf[..n], &up_state.requests);
            let mut pattern = up_state.pattern.lock().expect("pattern");
            if let Some(p) = pattern.as_ref() {
                if buf[..n].windows(p.len()).any(|w| w == p.as_slice()) {
                    *pattern = None;
                    up_cut.store(true, Ordering::SeqCst);
                    up_state.swallowed.fetch_add(1, Ordering::SeqCst);
                }
            }
            drop(pattern);
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
            if cut.load(Ordering::SeqCst) {
                continue; // swallowed
            }
            if client_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if !cut.load(Ordering::SeqCst) {
            let _ = client_w.shutdown(Shutdown::Write);
        }
    });
}
