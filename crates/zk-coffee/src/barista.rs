//! The barista role: register on shift, serve the orders in our bucket in the order they were
//! placed, and leave cleanly.
//!
//! A barista holds the EPHEMERAL `/barista_group/{name}` while on shift and owns the
//! persistent bucket `/orders/{name}`. It keeps one children watch on the bucket; each wake-up
//! lists the bucket once, sorts the orders by sequence and serves them one by one: read the
//! coffee, brew, delete the order (the deletion is what tells the customer it was served).
//!
//! Everything the barista waits for arrives on one channel ([`Wake`]): bucket changes, its own
//! membership node changing, session events and stop requests. Each wait has a timeout.

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use crate::duration::human;
use crate::error::{Error, Result};
use crate::layout::{self, BaristaName, OrderName};
use crate::registration::Registration;
use crate::session::{Removal, Session, SessionEvent};
use crate::shop;
use crate::shutdown::{Shutdown, Stop};

/// Longest single wait for a wake-up; a safety net, not a poll (nothing is re-read on it unless
/// the session changed).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// How a barista is set up.
#[derive(Debug, Clone)]
pub struct BaristaConfig {
    /// Our name in `/barista_group` and `/orders`.
    pub name: BaristaName,
    /// How long one coffee takes.
    pub brew_time: Duration,
    /// Leave when no order has come for this long (the seed's behaviour); `None` = stay.
    pub leave_after_idle: Option<Duration>,
}

/// Why the shift ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftEnd {
    /// A stop was requested and the barista left cleanly.
    Stopped,
    /// No orders came for `leave_after_idle`.
    Idle,
    /// A second stop request: left at once; orders may remain in the bucket.
    Abandoned { orders_left: usize },
}

/// Something the barista was waiting for happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// The bucket's children changed.
    Orders,
    /// Our membership node changed or vanished.
    Membership,
    /// The connection or session changed.
    Session(SessionEvent),
    /// Someone asked us to stop.
    Stop,
}

/// Works one shift: registers, serves until stopped (or idle), leaves. Stops within a bounded
/// time of `shutdown` being requested; a second request leaves the order in hand unfinished.
pub fn run(session: &Session, config: &BaristaConfig, shutdown: &Shutdown) -> Result<ShiftEnd> {
    shop::check_initialised(session)?;
    let (tx, rx) = mpsc::channel();
    let stop_tx = tx.clone();
    shutdown.on_request(move || {
        let _ = stop_tx.send(Wake::Stop);
    });
    let session_tx = Mutex::new(tx.clone());
    session.subscribe(move |event| {
        let _ = session_tx.lock().map(|tx| tx.send(Wake::Session(event)));
    });
    let mut barista = Barista {
        session: session.clone(),
        config: config.clone(),
        shutdown: shutdown.clone(),
        wakes: rx,
        wake_tx: tx,
        process_token: format!("{:016x}", rand::random::<u64>()),
        started: SystemTime::now(),
        registered: None,
        reported_foreign: HashSet::new(),
    };
    barista.shift()
}

struct Barista {
    session: Session,
    config: BaristaConfig,
    shutdown: Shutdown,
    wakes: Receiver<Wake>,
    wake_tx: Sender<Wake>,
    /// Tells our membership nodes (of any of our sessions) from another process's.
    process_token: String,
    started: SystemTime,
    /// The session generation our membership node belongs to.
    registered: Option<u64>,
    /// Foreign bucket children already logged, so each is reported once.
    reported_foreign: HashSet<String>,
}

/// What one look at the bucket found.
enum Queue {
    Orders(Vec<OrderName>),
    /// The bucket itself is gone (deleted by someone else).
    NoBucket,
}

impl Barista {
    fn shift(&mut self) -> Result<ShiftEnd> {
        let mut last_order = Instant::now();
        while self.shutdown.state() == Stop::No {
            if self.registered != Some(self.session.generation()) {
                self.register()?;
            }
            let orders = match self.look_at_bucket()? {
                Queue::Orders(orders) => orders,
                Queue::NoBucket => {
                    warn!("my bucket {} vanished; making it again", layout::bucket(&self.config.name));
                    self.registered = None;
                    continue;
                }
            };
            if self.registered != Some(self.session.generation()) {
                continue; // a new session: our watches and membership are gone
            }
            if !orders.is_empty() {
                for order in orders {
                    if self.shutdown.state() != Stop::No {
                        break;
                    }
                    self.serve(order)?;
                }
                last_order = Instant::now();
                continue;
            }
            let wait = match self.config.leave_after_idle {
                Some(idle) => match idle.checked_sub(last_order.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(MAX_WAIT),
                    _ => {
                        info!("no orders for {}, I'm leaving", human(idle));
                        return self.leave(ShiftEnd::Idle);
                    }
                },
                None => MAX_WAIT,
            };
            self.wait(wait);
        }
        self.leave(ShiftEnd::Stopped)
    }

    /// Waits up to `timeout` for a wake-up, then drains the ones queued behind it.
    fn wait(&mut self, timeout: Duration) {
        match self.wakes.recv_timeout(timeout) {
            Ok(wake) => self.note(wake),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        while let Ok(wake) = self.wakes.try_recv() {
            self.note(wake);
        }
    }

    fn note(&mut self, wake: Wake) {
        debug!("woken by {wake:?}");
        match wake {
            Wake::Membership | Wake::Session(SessionEvent::Lost) => self.registered = None,
            Wake::Orders | Wake::Session(SessionEvent::Reconnected) | Wake::Stop => {}
        }
    }

    /// Creates the bucket (if needed) and then our membership node, in that order, so a
    /// customer who sees us on shift can always order.
    fn register(&mut self) -> Result<()> {
        let name = self.config.name.clone();
        let bucket = layout::bucket(&name);
        let member = layout::member(&name);
        if self.session.ensure_persistent(&bucket, b"")? {
            debug!("created my bucket {bucket}");
        }
        // Read the generation before the create: if the session is replaced in between, the
        // mismatch makes the shift loop register again.
        let generation = self.session.generation();
        let registration = Registration::for_this_process(
            self.process_token.clone(),
            generation,
            self.config.brew_time.as_millis() as u64,
            self.started,
        );
        // The previous holder of this name may be a dead session the server has not expired
        // yet: wait for it up to two session timeouts before calling the name taken.
        let deadline = Instant::now() + self.session.session_timeout() * 2 + Duration::from_secs(1);
        let mut announced = false;
        loop {
            if self.session.create_ephemeral(&member, &registration.encode())? {
                break;
            }
            let Some((data, version)) = self.session.versioned_data(&member)? else { continue };
            match Registration::decode(&data) {
                Some(r) if r == registration => break, // our own create, retried after a loss
                Some(r) if r.process_token == self.process_token => {
                    debug!("removing my membership node from session {}", r.generation);
                    self.session.delete(&member, Some(version))?;
                    continue;
                }
                _ => {}
            }
            if Instant::now() >= deadline || self.shutdown.state() != Stop::No {
                return Err(Error::NameInUse(name.to_string()));
            }
            if !announced {
                info!("{member} is held by another session; waiting for it to expire");
                announced = true;
            }
            let tx = self.wake_tx.clone();
            if self.session.watch_exists(&member, move || {
                let _ = tx.send(Wake::Membership);
            })? {
                self.wait(deadline.saturating_duration_since(Instant::now()).min(MAX_WAIT));
            }
        }
        let tx = self.wake_tx.clone();
        self.session.watch_exists(&member, move || {
            let _ = tx.send(Wake::Membership);
        })?;
        self.registered = Some(generation);
        info!("barista {name} is on shift (session {generation})");
        Ok(())
    }

    /// Lists the bucket once, re-arming the children watch, and returns the orders in the order
    /// they were placed.
    fn look_at_bucket(&mut self) -> Result<Queue> {
        let tx = self.wake_tx.clone();
        let bucket = layout::bucket(&self.config.name);
        let Some(children) = self.session.watch_children(&bucket, move || {
            let _ = tx.send(Wake::Orders);
        })?
        else {
            return Ok(Queue::NoBucket);
        };
        let (orders, foreign) = layout::orders_in_placement_order(&children);
        for child in foreign {
            if self.reported_foreign.insert(child.to_owned()) {
                warn!("ignoring {bucket}/{child}: not an order (orders are named coffee + 10 digits)");
            }
        }
        Ok(Queue::Orders(orders))
    }

    /// Reads, brews and serves one order. An order that vanishes on the way was withdrawn by
    /// its customer.
    fn serve(&mut self, order: OrderName) -> Result<()> {
        let path = layout::order(&self.config.name, order);
        let Some(data) = self.session.data(&path)? else {
            debug!("{path} was withdrawn before I started it");
            return Ok(());
        };
        let coffee = String::from_utf8_lossy(&data).into_owned();
        info!("making {coffee} for {order}");
        let brewed_at = Instant::now() + self.config.brew_time;
        while let Some(left) = brewed_at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            self.wait(left);
            if self.shutdown.state() == Stop::Now {
                info!("stopping at once: {order} is left unserved");
                return Ok(());
            }
        }
        if self.session.delete(&path, None)? {
            info!("served {coffee} ({order})");
        } else {
            info!("{order} was withdrawn while I made it");
        }
        Ok(())
    }

    /// Leaves the shift: off `/barista_group` first, so no new customer picks us; then, unless
    /// told to stop at once, serves what is still queued and removes the empty bucket.
    fn leave(&mut self, end: ShiftEnd) -> Result<ShiftEnd> {
        let name = self.config.name.clone();
        self.session.delete(&layout::member(&name), None)?;
        self.registered = None;
        info!("barista {name} left the group");
        let bucket = layout::bucket(&name);
        // A bucket that holds a child which is not an order cannot be removed; give up on it
        // after a few tries rather than loop.
        let mut not_empty = 0;
        loop {
            let orders = match self.look_at_bucket()? {
                Queue::NoBucket => return Ok(end),
                Queue::Orders(orders) => orders,
            };
            if self.shutdown.state() == Stop::Now {
                if !orders.is_empty() {
                    warn!("stopped at once with {} orders left in {bucket}", orders.len());
                }
                return Ok(ShiftEnd::Abandoned { orders_left: orders.len() });
            }
            if orders.is_empty() {
                match self.session.delete_if_empty(&bucket)? {
                    Removal::Deleted | Removal::Absent => {
                        info!("removed my empty bucket {bucket}");
                        return Ok(end);
                    }
                    Removal::NotEmpty if not_empty < 3 => {
                        not_empty += 1; // a late order arrived: serve it
                        continue;
                    }
                    Removal::NotEmpty => {
                        warn!("leaving {bucket} in place: it holds children that are not orders");
                        return Ok(end);
                    }
                }
            }
            info!("serving {} orders still queued before leaving", orders.len());
            for order in orders {
                if self.shutdown.state() == Stop::Now {
                    break;
                }
                self.serve(order)?;
            }
        }
    }
}
