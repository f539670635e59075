//! The customer role: pick a barista and a coffee, place the order, wait to be served.
//!
//! An order is a PERSISTENT_SEQUENTIAL child of the chosen barista's bucket whose data is the
//! coffee's name. The customer learns it was served from a watch on the order (a `getData`
//! watch, which also tells it of a rejection; the original program used an `exists` watch,
//! which works as well against our baristas): the barista deletes the order when the coffee is
//! ready. An order already gone when the watch is set was served (under load a barista often
//! beats the customer). A customer that runs out of patience withdraws (deletes) its order; if
//! the order is already gone by then, it was served after all and the customer says so. A
//! barista may instead reject the order (see [`crate::order`]): the customer withdraws it and
//! says why. In a secured shop a customer may not delete orders: it withdraws by marking its
//! order (`withdrawn: <coffee>`, which only its own identity may write), and the barista
//! removes it ([`crate::order::withdrawal`]).
//!
//! The load generator's customers do the same by default (so that a load process costs the
//! servers in proportion to its own orders); with `--watch-all-orders` they share a [`Board`]
//! instead: its one watch on `/orders` gives them the queue lengths and tells each when its
//! order is deleted or changed, so that placing the order is all they ask of ZooKeeper.
//!
//! # Layout
//!
//! - this module: one visit (arrive, choose, place, wait, withdraw) and its outcome;
//! - [`choosing`]: how a barista is chosen, and when the shop is full;
//! - [`roster`]: the baristas on shift as customers see them, kept under a watch;
//! - [`board`]: the queue lengths and served orders of the whole shop from one watch, for
//!   the load generator's customers with `--watch-all-orders`;
//! - [`load`]: many customers at once from one process, closed loop or open loop;
//! - [`summary`]: what happened to a run's orders: counts, the latency histogram, the
//!   `summary` line, the summary file and the merging of several.

pub mod board;
pub mod choosing;
pub mod load;
pub mod roster;
pub mod summary;

use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::config::{self, ShopConfig};
use crate::error::{Absence, Error, Result};
use crate::layout::{self, BaristaName};
use crate::order;
use crate::session::Session;
use crate::shop;
use crate::shutdown::{Shutdown, Stop};
use crate::wake::Wakes;
use board::{Board, News};
use choosing::{choose, Queues};
pub use choosing::{Choice, DEFAULT_MAX_QUEUE};
use roster::Roster;

/// How many baristas a customer tries when the chosen one leaves before the order is placed.
const MAX_ORDER_ATTEMPTS: usize = 3;
/// First and longest pause between looks at the order while ZooKeeper is out of reach.
const OUTAGE_FIRST_BACKOFF: Duration = Duration::from_millis(200);
const OUTAGE_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the customer wants.
#[derive(Debug, Clone)]
pub struct CustomerConfig {
    /// The coffee to order (checked against the shop's menu); `None` picks one from the menu
    /// at random.
    pub coffee: Option<String>,
    /// Order from this barista only; `None` chooses among those on shift.
    pub barista: Option<BaristaName>,
    /// How long to wait to be served before withdrawing the order.
    pub patience: Duration,
    /// How to choose a barista.
    pub choice: Choice,
    /// Do not join a queue this long or longer; `None`: the shop's setting, else
    /// [`DEFAULT_MAX_QUEUE`].
    pub max_queue: Option<u32>,
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
    /// The barista turned the order down, for this reason; the order was withdrawn.
    Rejected(Receipt, String),
}

impl Outcome {
    /// The receipt, whatever the outcome.
    pub fn receipt(&self) -> &Receipt {
        match self {
            Outcome::Served(r) | Outcome::GaveUp(r) | Outcome::Rejected(r, _) => r,
        }
    }

    /// One line a script can parse: `served order=... coffee=... barista=... wait_ms=...`
    /// (`gave-up ...`, or `rejected ... reason="..."`).
    pub fn line(&self) -> String {
        let (word, r) = match self {
            Outcome::Served(r) => ("served", r),
            Outcome::GaveUp(r) => ("gave-up", r),
            Outcome::Rejected(r, _) => ("rejected", r),
        };
        let line = format!("{word} order={} coffee={} barista={} wait_ms={}", r.order, r.coffee, r.barista, r.waited.as_millis());
        match self {
            Outcome::Rejected(_, reason) => format!("{line} reason={reason:?}"),
            _ => line,
        }
    }
}

/// The stdout line for a visit that ended in an error: `no-barista exit=4`,
/// `shop-full exit=9` or `failed exit=N`, so that every outcome has a line a script can parse.
pub fn failure_line(error: &Error) -> String {
    let word = match error {
        Error::NoBarista(_) => "no-barista",
        Error::ShopFull { .. } => "shop-full",
        Error::Left { .. } => "gave-up",
        Error::Closed { .. } => "closed",
        _ => "failed",
    };
    format!("{word} exit={}", error.exit_code())
}

/// What woke a waiting customer.
#[derive(Debug, Clone, Copy)]
enum Wake {
    /// The order was deleted: served.
    Served,
    /// The order node changed or vanished, or the watch was lost to a reconnect.
    Order,
    Stop,
}

/// Places one order and waits for it. `shutdown` makes the customer withdraw and return.
pub fn visit(session: &Session, config: &CustomerConfig, shutdown: &Shutdown) -> Result<Outcome> {
    shop::check_initialised(session)?;
    let shop = config::load_or_default(session)?;
    order_and_wait(session, &Roster::new(session), None, config, &shop, shutdown)
}

/// Like [`visit`], for a customer that already knows the shop exists and has read its
/// configuration, and follows the baristas on shift with `roster` (and, if given, the queues
/// and its order with `board`): one that orders again and again (the load generator).
pub fn order_and_wait(
    session: &Session,
    roster: &Roster,
    board: Option<&Board>,
    config: &CustomerConfig,
    shop: &ShopConfig,
    shutdown: &Shutdown,
) -> Result<Outcome> {
    let coffee = match &config.coffee {
        Some(c) => shop.menu.check(c)?,
        None => shop.menu.pick(&mut rand::rng()).to_owned(),
    };
    let max_queue = config.max_queue.or(shop.max_queue).unwrap_or(DEFAULT_MAX_QUEUE);
    let arrived = Instant::now();
    // Patience counts from arrival: time spent waiting for a barista is part of it.
    let deadline = arrived + config.patience;
    let queues = Queues { session, board };
    let (barista, order) = place_order(&queues, roster, config, max_queue, &coffee, deadline, shutdown)?;
    info!("ordered {coffee} from {barista}: {order}");
    let placed = Instant::now();

    // After a reconnect or a new session, look at the order again.
    let wakes = Wakes::new(shutdown, Wake::Stop).hear_session(session, |_| Wake::Order);
    let board_tx = wakes.sender();
    let _news = board.map(|board| {
        board.wait_for(&order, move |news| {
            let _ = board_tx.send(match news {
                News::Deleted => Wake::Served,
                News::Look => Wake::Order,
            });
        })
    });
    // With a board, the first look is not needed: the order was just placed, and the board
    // tells of any change since.
    let mut look = board.is_none();
    let receipt = |placed: Instant| Receipt {
        order: order.clone(),
        barista: barista.clone(),
        coffee: coffee.clone(),
        waited: placed.elapsed(),
    };
    let mut outage: Option<Duration> = None;
    // A stop requested while the order was being placed, before our waker was registered,
    // sends us nothing: look first.
    if shutdown.state() != Stop::No {
        return withdraw(session, &wakes, receipt(placed));
    }
    loop {
        if look {
            let pending = match look_at(session, board, &order, &wakes) {
                Ok(pending) => pending,
                // ZooKeeper is out of reach (perhaps our session expired meanwhile): keep
                // looking for the order, with backoff, as long as patience lasts.
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    let backoff = outage.map_or(OUTAGE_FIRST_BACKOFF, |b| (b * 2).min(OUTAGE_MAX_BACKOFF));
                    if outage.is_none() {
                        warn!("{e}; still waiting for {order}");
                    }
                    outage = Some(backoff);
                    match wakes.wait(backoff.min(deadline.saturating_duration_since(Instant::now()))) {
                        // Told of the deletion while our own calls fail: it was served all
                        // the same, and the news needs no look.
                        Some(Wake::Served) => return Ok(Outcome::Served(receipt(placed))),
                        Some(Wake::Stop) if shutdown.state() != Stop::No => {
                            return withdraw(session, &wakes, receipt(placed));
                        }
                        _ => continue,
                    }
                }
                Err(e) if told_served(&wakes) => {
                    debug!("{e}, but {order} was served meanwhile");
                    return Ok(Outcome::Served(receipt(placed)));
                }
                Err(e) => return Err(e),
            };
            outage = None;
            let Some(data) = pending else {
                return Ok(Outcome::Served(receipt(placed)));
            };
            if let Some(reason) = rejected(&data) {
                // Withdraw it: nobody will make it.
                take_back(session, &order, &coffee)?;
                info!("{order} was rejected: {reason}");
                return Ok(Outcome::Rejected(receipt(placed), reason));
            }
        }
        look = true;
        let left = deadline.saturating_duration_since(Instant::now());
        let give_up = match wakes.wait(left) {
            // The deletion is the serving: no need to look again.
            Some(Wake::Served) => return Ok(Outcome::Served(receipt(placed))),
            Some(Wake::Order) => false,
            Some(Wake::Stop) => shutdown.state() != Stop::No,
            None => true,
        };
        if give_up {
            return withdraw(session, &wakes, receipt(placed));
        }
    }
}

/// Reads the order (`None`: it is gone, i.e. served). Without a board, also sets a watch on it
/// whose news goes to `wakes`.
fn look_at(session: &Session, board: Option<&Board>, order: &str, wakes: &Wakes<Wake>) -> Result<Option<Vec<u8>>> {
    let read = if let Some(board) = board {
        // After a lost session the board's watch must be set again, or no news would come.
        board.ensure_watch()?;
        session.read(order)
    } else {
        let notify = wakes.sender();
        session.watch_read(order, move |deleted| {
            let _ = notify.send(if deleted { Wake::Served } else { Wake::Order });
        })
    };
    Ok(read?.map(|node| node.data))
}

/// The reason a barista gave for rejecting an order, if it did.
fn rejected(data: &[u8]) -> Option<String> {
    std::str::from_utf8(data).ok()?.strip_prefix(order::REJECTED_PREFIX).map(str::to_owned)
}

/// Withdraws `order` (of `coffee`): deletes it in an open shop, marks it withdrawn in a
/// secured one (where the barista deletes it). `false` if it was gone already (served).
fn take_back(session: &Session, order: &str, coffee: &str) -> Result<bool> {
    if session.is_protected() {
        session.set_if_exists(order, &order::withdrawal(coffee))
    } else {
        session.delete(order, None)
    }
}

/// Withdraws the order; if it was already gone, the barista served it in the meantime. If
/// ZooKeeper cannot be reached, news of the serving that came meanwhile on `wakes` still counts.
fn withdraw(session: &Session, wakes: &Wakes<Wake>, receipt: Receipt) -> Result<Outcome> {
    match take_back(session, &receipt.order, &receipt.coffee) {
        Ok(true) => {
            info!("gave up waiting for {}; withdrew {}", receipt.coffee, receipt.order);
            Ok(Outcome::GaveUp(receipt))
        }
        Ok(false) => Ok(Outcome::Served(receipt)),
        Err(e) if e.is_transient() && told_served(wakes) => {
            debug!("{e}, but {} was served meanwhile", receipt.order);
            Ok(Outcome::Served(receipt))
        }
        Err(e) => Err(e),
    }
}

/// Whether news of the order's deletion (its serving) is waiting on `wakes`, taking what is
/// queued there.
fn told_served(wakes: &Wakes<Wake>) -> bool {
    wakes.queued().any(|wake| matches!(wake, Wake::Served))
}

/// Chooses a barista on shift and creates the order in their bucket. With nobody on shift,
/// waits for a barista to register until `deadline`. A barista whose bucket vanished between
/// listing and ordering has left: choose again.
fn place_order(
    queues: &Queues,
    roster: &Roster,
    config: &CustomerConfig,
    max_queue: u32,
    coffee: &str,
    deadline: Instant,
    shutdown: &Shutdown,
) -> Result<(BaristaName, String)> {
    let tag = format!("{:016x}", rand::random::<u64>());
    let mut gone: Vec<BaristaName> = Vec::new();
    loop {
        if let Some(reason) = roster.closed()? {
            return Err(Error::Closed { reason });
        }
        let candidates: Vec<BaristaName> = roster
            .on_shift()?
            .into_iter()
            .filter(|b| !gone.contains(b))
            .filter(|b| config.barista.as_ref().is_none_or(|wanted| wanted == b))
            .collect();
        if candidates.is_empty() {
            wait_for_a_barista(roster, config, deadline, shutdown)?;
            continue;
        }
        let Some(barista) = choose(queues, config.choice, max_queue, &candidates, &mut gone)? else { continue };
        match queues.session.create_sequential_protected(&layout::order_prefix(&barista), coffee.as_bytes(), &tag)? {
            Some(order) => return Ok((barista, order)),
            None => {
                debug!("{barista} left before I could order; choosing again");
                gone.push(barista);
                if gone.len() >= MAX_ORDER_ATTEMPTS {
                    return Err(Error::NoBarista(Absence::AllLeft { left: gone.len() }));
                }
            }
        }
    }
}

/// Blocks until somebody comes on shift (or goes: the caller looks again), or fails at
/// `deadline`.
fn wait_for_a_barista(roster: &Roster, config: &CustomerConfig, deadline: Instant, shutdown: &Shutdown) -> Result<()> {
    let wakes = Wakes::new(shutdown, ());
    let _wait = roster.tell_on_change(wakes.sender());
    let on_shift = roster.on_shift()?;
    let wanted_on_shift = match &config.barista {
        Some(wanted) => on_shift.contains(wanted),
        None => !on_shift.is_empty(),
    };
    if wanted_on_shift {
        return Ok(()); // came on shift since we looked
    }
    let asked_for = || config.barista.as_ref().map(BaristaName::to_string);
    let left = deadline.saturating_duration_since(Instant::now());
    debug!(
        "waiting for {} to come on shift",
        config.barista.as_ref().map_or_else(|| "a barista".into(), |b| format!("barista {b}"))
    );
    // A stop requested before our waker was registered sends us nothing: look first.
    let stopped = shutdown.state() != Stop::No;
    if !stopped && (left.is_zero() || wakes.wait(left).is_none()) {
        return Err(Error::NoBarista(Absence::NotOnShift { asked_for: asked_for(), patience: config.patience }));
    }
    if shutdown.state() != Stop::No {
        // Patience counts from arrival (the deadline): what of it is gone is how long we waited.
        let waited = config.patience.saturating_sub(deadline.saturating_duration_since(Instant::now()));
        return Err(Error::Left { asked_for: asked_for(), waited });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_line() {
        let nobody = Error::NoBarista(Absence::NotOnShift { asked_for: None, patience: Duration::from_secs(1) });
        assert_eq!(failure_line(&nobody), "no-barista exit=4");
        assert_eq!(failure_line(&Error::NoBarista(Absence::AllLeft { left: MAX_ORDER_ATTEMPTS })), "no-barista exit=4");
        assert_eq!(failure_line(&Error::ShopFull { max_queue: 2, baristas: 2 }), "shop-full exit=9");
        assert_eq!(failure_line(&Error::Left { asked_for: None, waited: Duration::ZERO }), "gave-up exit=3");
        assert_eq!(failure_line(&Error::usage("bad")), "failed exit=2");
    }
}
