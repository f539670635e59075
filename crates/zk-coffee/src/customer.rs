//! The customer role: pick a barista and a coffee, place the order, wait to be served.
//!
//! An order is a PERSISTENT_SEQUENTIAL child of the chosen barista's bucket whose data is the
//! coffee's name. The customer learns it was served from an `exists` watch on the order: the
//! barista deletes the order when the coffee is ready. An order already gone when the watch is
//! set was served (under load a barista often beats the customer). A customer that runs out of
//! patience withdraws (deletes) its order; if the order is already gone by then, it was served
//! after all and the customer says so.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::{debug, info};
use rand::seq::IndexedRandom;

use crate::error::{Error, Result};
use crate::layout::{self, BaristaName};
use crate::menu::Menu;
use crate::session::Session;
use crate::shop;
use crate::shutdown::{Shutdown, Stop};

/// How many baristas a customer tries when the chosen one leaves before the order is placed.
const MAX_ORDER_ATTEMPTS: usize = 3;

/// What the customer wants.
#[derive(Debug, Clone)]
pub struct CustomerConfig {
    /// The coffee to order; `None` picks one from the menu at random.
    pub coffee: Option<String>,
    /// Order from this barista only; `None` picks one on shift at random.
    pub barista: Option<BaristaName>,
    /// How long to wait to be served before withdrawing the order.
    pub patience: Duration,
    /// What may be ordered.
    pub menu: Menu,
}

/// One placed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The order's full path, `/orders/{barista}/coffee{sequence}`.
    pub order: String,
    /// Who makes it.
    pub barista: BaristaName,
    /// What was ordered.
    pub coffee: String,
    /// From placing the order to learning the outcome.
    pub waited: Duration,
}

/// How a visit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The barista deleted the order: coffee served.
    Served(Receipt),
    /// Patience ran out (or the customer was stopped); the order was withdrawn.
    GaveUp(Receipt),
}

impl Outcome {
    /// The receipt, whatever the outcome.
    pub fn receipt(&self) -> &Receipt {
        match self {
            Outcome::Served(r) | Outcome::GaveUp(r) => r,
        }
    }

    /// One line a script can parse: `served order=... coffee=... barista=... wait_ms=...`.
    pub fn line(&self) -> String {
        let (word, r) = match self {
            Outcome::Served(r) => ("served", r),
            Outcome::GaveUp(r) => ("gave-up", r),
        };
        format!("{word} order={} coffee={} barista={} wait_ms={}", r.order, r.coffee, r.barista, r.waited.as_millis())
    }
}

/// The stdout line for a visit that ended in an error: `no-barista exit=4` or
/// `failed exit=N`, so that every outcome has a line a script can parse.
pub fn failure_line(error: &Error) -> String {
    let word = if matches!(error, Error::NoBarista(_)) { "no-barista" } else { "failed" };
    format!("{word} exit={}", error.exit_code())
}

/// What woke a waiting customer.
#[derive(Debug, Clone, Copy)]
enum Wake {
    /// The order node changed or vanished, or the watch was lost to a reconnect.
    Order,
    Stop,
}

/// Places one order and waits for it. `shutdown` makes the customer withdraw and return.
pub fn visit(session: &Session, config: &CustomerConfig, shutdown: &Shutdown) -> Result<Outcome> {
    let coffee = match &config.coffee {
        Some(c) => config.menu.check(c)?,
        None => config.menu.pick(&mut rand::rng()).to_owned(),
    };
    shop::check_initialised(session)?;
    let arrived = Instant::now();
    let (barista, order) = place_order(session, config, &coffee, arrived + config.patience)?;
    info!("ordered {coffee} from {barista}: {order}");
    let placed = Instant::now();

    let (tx, rx) = mpsc::channel();
    let stop_tx = tx.clone();
    shutdown.on_request(move || {
        let _ = stop_tx.send(Wake::Stop);
    });
    let session_tx = Mutex::new(tx.clone());
    session.subscribe(move |_| {
        let _ = session_tx.lock().map(|tx| tx.send(Wake::Order));
    });
    let receipt = |placed: Instant| Receipt {
        order: order.clone(),
        barista: barista.clone(),
        coffee: coffee.clone(),
        waited: placed.elapsed(),
    };
    // Patience counts from arrival: time spent waiting for a barista is part of it.
    let deadline = arrived + config.patience;
    loop {
        let notify = tx.clone();
        let pending = session.watch_exists(&order, move || {
            let _ = notify.send(Wake::Order);
        })?;
        if !pending {
            return Ok(Outcome::Served(receipt(placed)));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let give_up = match rx.recv_timeout(left) {
            Ok(Wake::Order) => false,
            Ok(Wake::Stop) => shutdown.state() != Stop::No,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => true,
        };
        if give_up {
            return withdraw(session, receipt(placed));
        }
    }
}

/// Deletes the order; if it was already gone, the barista served it in the meantime.
fn withdraw(session: &Session, receipt: Receipt) -> Result<Outcome> {
    if session.delete(&receipt.order, None)? {
        info!("gave up waiting for {}; withdrew {}", receipt.coffee, receipt.order);
        Ok(Outcome::GaveUp(receipt))
    } else {
        Ok(Outcome::Served(receipt))
    }
}

/// Chooses a barista on shift and creates the order in their bucket. With nobody on shift,
/// waits for a barista to register until `deadline`. A barista whose bucket vanished between
/// listing and ordering has left: choose again.
fn place_order(session: &Session, config: &CustomerConfig, coffee: &str, deadline: Instant) -> Result<(BaristaName, String)> {
    let tag = format!("{:016x}", rand::random::<u64>());
    let mut gone: Vec<BaristaName> = Vec::new();
    let mut attempts = 0;
    loop {
        let (tx, rx) = mpsc::channel();
        let on_shift = shop::watch_baristas_on_shift(session, move || {
            let _ = tx.send(());
        })?;
        let candidates: Vec<&BaristaName> = on_shift
            .iter()
            .filter(|b| !gone.contains(b))
            .filter(|b| config.barista.as_ref().is_none_or(|wanted| wanted == *b))
            .collect();
        let Some(&barista) = candidates.choose(&mut rand::rng()) else {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || rx.recv_timeout(left).is_err() {
                return Err(Error::NoBarista(match &config.barista {
                    Some(wanted) => format!("barista {wanted} did not come on shift within my patience"),
                    None => format!("nobody registered under {} within my patience", layout::BARISTA_GROUP),
                }));
            }
            continue;
        };
        match session.create_sequential_protected(&layout::order_prefix(barista), coffee.as_bytes(), &tag)? {
            Some(order) => return Ok((barista.clone(), order)),
            None => {
                debug!("{barista} left before I could order; choosing again");
                gone.push(barista.clone());
                attempts += 1;
                if attempts >= MAX_ORDER_ATTEMPTS {
                    return Err(Error::NoBarista(format!("{MAX_ORDER_ATTEMPTS} baristas left before I could order")));
                }
            }
        }
    }
}
