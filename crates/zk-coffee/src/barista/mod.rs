//! The barista role: register on shift, serve the orders in our bucket in the order they were
//! placed, adopt the orphaned buckets of baristas that died, and leave without losing an order.
//!
//! A barista holds the EPHEMERAL `/barista_group/{name}` while on shift and owns the
//! persistent bucket `/orders/{name}`. It learns of new orders from a watch on its bucket
//! (see [`Bucket`]) and serves them in the order they were placed: read the coffee, brew,
//! delete the order (the deletion is what tells the customer it was served). Orders that are
//! ready together are served together: their reads go out at once, and one transaction
//! deletes them all and counts them in the sales ledger, so a busy barista asks ZooKeeper for
//! little more than one read per order.
//!
//! **Outages.** While ZooKeeper is unreachable the barista waits with backoff and carries on
//! when it returns; after a lost session it registers again on the new one.
//!
//! Everything the barista waits for arrives on one channel (`Wake`, wired by `crate::wake`);
//! each wait has a timeout.
//!
//! # Layout
//!
//! A shift goes through one `Phase`: joining, on shift, leaving. This file holds the shift
//! loop, the wake-ups and what the parts share; each part owns its state, and its file's `//!`
//! tells the whole story:
//!
//! - `joining`: coming on shift, the bucket first and then the EPHEMERAL membership node; after
//!   a restart, waiting for a stale holder of our name to expire, or taking over from one that
//!   is certainly dead. Owns who we are, as written into our nodes.
//! - `adoption`: a bucket whose owner is not on shift is an orphan; the first barista to claim
//!   it serves it where it is, and gives it back when its owner returns. Owns our claims and
//!   the group as read.
//! - `rota`: who minds whom. Each barista minds the one that came just before it, the first
//!   minds the group, so a departure wakes one or two baristas and an arrival one (not all).
//!   Owns our place on the rota.
//! - `serving`: serving the orders of our bucket and the adopted ones, in batches, counted in
//!   the sales ledger. Owns the buckets followed, the ledger and the menu.
//! - `leaving`: off the group first, then the order in hand; the queue is handed over to the
//!   others, or served for up to `drain_timeout` when nobody else is on shift. A second stop
//!   request leaves at once.
//! - [`Bucket`]: our view of one bucket, kept current by a watch.
//! - [`Metrics`]: what the shift counts for Prometheus (`metrics`).

mod adoption;
mod bucket;
mod joining;
mod leaving;
mod metrics;
mod rota;
mod serving;

use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::duration::human;
use crate::error::Result;
use crate::layout::{self, BaristaName};
use crate::operator;
use crate::session::{Session, SessionEvent, TreeEvent};
use crate::shop;
use crate::shutdown::{Shutdown, Stop};
use crate::wake::{Armed, Wakes};

pub use bucket::Bucket;
pub use metrics::Metrics;

use adoption::Adoption;
use joining::Identity;
use rota::Rota;
use serving::{Serving, Until};

/// Longest single wait for a wake-up; a safety net, not a poll: nothing is re-read after it
/// unless something changed.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Longest pause between attempts while ZooKeeper is unreachable.
const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(5);

/// How a barista is set up.
#[derive(Debug, Clone)]
pub struct BaristaConfig {
    /// Our name in `/barista_group` and `/orders`.
    pub name: BaristaName,
    /// How long one coffee takes.
    pub brew_time: Duration,
    /// Leave when no order has come for this long (the seed's behaviour); `None` = stay.
    pub leave_after_idle: Option<Duration>,
    /// When leaving with orders queued and nobody else on shift, serve them for at most this
    /// long; the rest waits for the next barista.
    pub drain_timeout: Duration,
    /// This boot's id, for when the kernel's `/proc/sys/kernel/random/boot_id` cannot be read
    /// (the systemd unit hides `/proc/sys` and passes `%B`); `None`: the kernel's only.
    pub boot_id: Option<String>,
}

/// Why the shift ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftEnd {
    /// A stop was requested and the barista left cleanly.
    Stopped,
    /// No orders came for `leave_after_idle`.
    Idle,
}

/// A moment in the shift that the outside world may want to hear of (e.g. systemd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Milestone {
    /// Registered on shift (again, after a lost session, with a higher generation).
    OnShift { name: BaristaName, generation: u64 },
    /// Leaving: off the group, finishing up.
    Leaving,
}

/// Something the barista was waiting for happened.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wake {
    /// An order came or went in a bucket we serve (the queue opened as `epoch`).
    Bucket { epoch: u64, event: TreeEvent },
    /// Our membership node changed or vanished.
    Membership,
    /// Somebody came or went, a bucket appeared or vanished, or a claim was released.
    Staff,
    /// The place we mind on the rota went (or changed).
    Rota,
    /// The shop's configuration changed.
    Config,
    /// The operator's send-home request for us appeared, changed or went.
    Home,
    /// The connection or session changed.
    Session(SessionEvent),
    /// Someone asked us to stop.
    Stop,
}

/// Works one shift: registers, serves until stopped (or idle), leaves. A first stop request
/// ends the shift gracefully, a second one at once (see the module docs). `milestones` hears
/// when the barista is on shift and when it starts leaving; `metrics` counts what happens
/// (served or not: see [`Metrics`]).
pub fn run(
    session: &Session,
    config: &BaristaConfig,
    shutdown: &Shutdown,
    milestones: &dyn Fn(Milestone),
    metrics: &Metrics,
) -> Result<ShiftEnd> {
    metrics.follow(session);
    shop::check_initialised(session)?;
    shop::ensure_extensions(session)?;
    let wakes = Wakes::new(shutdown, Wake::Stop).hear_session(session, Wake::Session);
    let serving = Serving::open(session, &config.name)?;
    let mut barista = Barista {
        ctx: Context {
            session: session.clone(),
            config: config.clone(),
            shutdown: shutdown.clone(),
            wakes,
            armed: Armed::default(),
            milestones,
            metrics: metrics.clone(),
        },
        phase: Phase::Joining,
        changed: Changed { staff: true, config: true, home: true, rota: true },
        identity: Identity::of_this_process(config),
        adoption: Adoption::default(),
        rota: Rota::default(),
        serving,
        last_order: Instant::now(),
    };
    barista.shift()
}

/// What every part of the shift reads, and nobody changes.
struct Context<'m> {
    /// Every call to ZooKeeper goes through it (a clone shares the one session).
    session: Session,
    /// How we were set up: our name, brew time, idle and drain limits.
    config: BaristaConfig,
    /// The stop request: graceful first, at once the second time.
    shutdown: Shutdown,
    /// Where everything we wait for arrives.
    wakes: Wakes<Wake>,
    /// The one-shot watches set and not fired yet.
    armed: Armed,
    /// Hears when we are on shift and when we start leaving.
    milestones: &'m dyn Fn(Milestone),
    /// Where the shift counts what happens (atomics: shared with the metrics server, if any).
    metrics: Metrics,
}

impl Context<'_> {
    /// Whether `path` exists, watching it for `wake` unless a watch of ours on it has not
    /// fired yet (then `None`: that one will tell).
    fn watch_exists(&self, path: &str, wake: Wake) -> Result<Option<bool>> {
        self.watch(path, self.wakes.waker(wake), |notify| self.session.watch_exists(path, notify))
    }

    /// [`Armed::watch`] on the current session.
    fn watch<T>(
        &self,
        path: &str,
        then: impl Fn() + Send + Sync + 'static,
        set: impl FnOnce(Box<dyn Fn() + Send + Sync>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.armed.watch(self.session.generation(), path, then, set)
    }
}

/// One barista's shift: the shared context, the phase, and each part's own state.
struct Barista<'m> {
    ctx: Context<'m>,
    phase: Phase,
    /// What changed since we last looked.
    changed: Changed,
    /// Who we are, as written into our nodes (see `joining`).
    identity: Identity,
    /// The buckets we adopted (see `adoption`).
    adoption: Adoption,
    /// Our place on the rota, and whom we mind (see `rota`).
    rota: Rota,
    /// The buckets we serve and what serving needs (see `serving`).
    serving: Serving,
    /// When we last served (or were given) an order: for `leave_after_idle`.
    last_order: Instant,
}

/// Where the shift stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not registered on the current session: at the start, after a new session or a
    /// reconnect, when our membership node or our bucket went. Register before anything else.
    Joining,
    /// Our membership node belongs to session `generation`.
    OnShift { generation: u64 },
    /// Off the group, finishing up: the order in hand, then handing over or draining our
    /// queue. `own_claim`: we hold the claim on our own bucket (nobody adopts it from under us
    /// until we release it).
    Leaving { own_claim: bool },
}

impl Phase {
    /// Whether we are on shift on session `generation`.
    fn on_shift(self, generation: u64) -> bool {
        self == Phase::OnShift { generation }
    }
}

/// "Something changed, look again": each bit is set by a wake-up and cleared only once its work
/// is done, so an outage in between means it is done again, not forgotten.
struct Changed {
    /// The group, the buckets or a claim changed since we last looked for orphans.
    staff: bool,
    /// The shop's configuration changed (or was never read).
    config: bool,
    /// The operator's send-home request may have come (or its watch must be set again).
    home: bool,
    /// The rota changed below us (or was never looked at on this session).
    rota: bool,
}

/// What one round of work decided.
enum Round {
    /// Look again.
    Continue,
    /// Nothing came for `leave_after_idle`.
    Idle,
    /// A stop was requested while waiting for our name to be free: we are not on shift.
    StoppedWaiting,
}

impl Barista<'_> {
    fn shift(&mut self) -> Result<ShiftEnd> {
        let mut outage: Option<(Instant, Duration)> = None;
        while self.ctx.shutdown.state() == Stop::No {
            match self.round() {
                Ok(Round::Continue) => {
                    if let Some((since, _)) = outage.take() {
                        info!("ZooKeeper is back after {}; serving again", human(since.elapsed()));
                    }
                }
                Ok(Round::Idle) => return self.leave(ShiftEnd::Idle),
                // Not in the group (another session holds our name): nothing to leave or hand
                // over; our bucket is the holder's, or an orphan to adopt.
                Ok(Round::StoppedWaiting) => return Ok(ShiftEnd::Stopped),
                Err(e) if e.is_transient() => {
                    let (since, backoff) = outage.unwrap_or_else(|| {
                        warn!("{e}; will keep trying");
                        (Instant::now(), Duration::from_millis(200))
                    });
                    self.wait(backoff);
                    outage = Some((since, (backoff * 2).min(MAX_OUTAGE_BACKOFF)));
                }
                Err(e) => return Err(e),
            }
        }
        self.leave(ShiftEnd::Stopped)
    }

    /// Whether we are on shift on the session as it is now.
    fn on_shift(&self) -> bool {
        self.phase.on_shift(self.ctx.session.generation())
    }

    /// Registers if needed, adopts orphans, serves what is queued, else waits for a wake-up.
    fn round(&mut self) -> Result<Round> {
        if !self.on_shift() {
            // A newer shop-init may have run while we were cut off: never write into a newer
            // layout.
            shop::layout_version::check(&self.ctx.session, None)?;
            // Claims are ephemeral: a new session holds none of the old ones.
            self.adoption.forget_claims();
            if !self.register()? {
                return Ok(Round::StoppedWaiting);
            }
            self.changed.staff = true;
            self.changed.rota = true;
        }
        self.apply_config_change()?;
        if self.changed.home {
            self.changed.home = false;
            if self.sent_home()? {
                return Ok(Round::Continue);
            }
        }
        if self.changed.rota && self.on_shift() {
            self.mind_the_rota()?;
            self.changed.rota = false;
        }
        if self.changed.staff {
            self.look_for_orphans()?;
            self.changed.staff = false;
        }
        self.sync_queues()?;
        let own = self.ctx.config.name.clone();
        if self.serving.bucket_gone(&own) {
            warn!("my bucket {} vanished; making it again", layout::bucket(&own));
            self.serving.close(&own);
            self.phase = Phase::Joining;
            return Ok(Round::Continue);
        }
        let mut served = self.serve_queue(&own, Until::StopRequested)?;
        for orphan in self.adoption.adopted() {
            if self.ctx.shutdown.state() != Stop::No {
                break;
            }
            served += self.serve_adopted(&orphan)?;
        }
        if served > 0 || !self.on_shift() {
            self.last_order = Instant::now();
            return Ok(Round::Continue);
        }
        let wait = match self.ctx.config.leave_after_idle {
            Some(idle) => match idle.checked_sub(self.last_order.elapsed()).filter(|d| !d.is_zero()) {
                Some(left) => left.min(MAX_WAIT),
                None => {
                    info!("no orders for {}, I'm leaving", human(idle));
                    return Ok(Round::Idle);
                }
            },
            None => MAX_WAIT,
        };
        // Come back for a rejected order when its grace is over, even if nothing else wakes us.
        let wait = match self.serving.next_due() {
            Some(due) => wait.min(due.saturating_duration_since(Instant::now())),
            None => wait,
        };
        // Wake-ups taken while listing may have left work (or a stop) to do: do it before
        // waiting for more.
        self.take_wakes();
        self.count_queue();
        let pending = self.changed.staff
            || self.changed.config
            || self.changed.rota
            || !self.on_shift()
            || self.serving.has_work(Instant::now());
        if self.ctx.shutdown.state() == Stop::No && !pending {
            self.wait(wait);
        }
        Ok(Round::Continue)
    }

    /// Whether the operator sent us home (`shop-admin send-home`): then we leave exactly as on
    /// SIGTERM. Watches our request; one left for an earlier session of our name is removed.
    fn sent_home(&mut self) -> Result<bool> {
        let request = layout::home_request(&self.ctx.config.name);
        // Not there; or a watch of ours on it has not fired yet, and will tell.
        if self.ctx.watch_exists(&request, Wake::Home)? != Some(true) {
            return Ok(false);
        }
        let Some(node) = self.ctx.session.read(&request)? else { return Ok(false) };
        let mine = self.ctx.session.session_id().is_some_and(|id| operator::is_for(&node.data, id));
        // Acted on (or stale) either way: it goes, and a repeated request is a new one.
        self.ctx.session.delete(&request, Some(node.version))?;
        if !mine {
            debug!("removed a send-home request for an earlier {}", self.ctx.config.name);
            return Ok(false);
        }
        info!("the operator sent me home; leaving");
        self.ctx.shutdown.request();
        Ok(true)
    }

    /// Waits up to `timeout` for a wake-up, then takes the ones queued behind it.
    fn wait(&mut self, timeout: Duration) {
        if let Some(wake) = self.ctx.wakes.wait(timeout) {
            self.note(wake);
        }
        self.take_wakes();
    }

    /// Takes the wake-ups already queued, without waiting.
    fn take_wakes(&mut self) {
        while let Some(wake) = self.ctx.wakes.take() {
            self.note(wake);
        }
    }

    /// Tells the metrics how many orders wait in the buckets we serve.
    fn count_queue(&self) {
        self.ctx.metrics.queue(self.serving.queue_length());
    }

    fn note(&mut self, wake: Wake) {
        match wake {
            // Events of a queue closed since are dropped.
            Wake::Bucket { epoch, event } => {
                self.serving.apply(epoch, &event);
                return self.count_queue();
            }
            _ => debug!("woken by {wake:?}"),
        }
        match wake {
            // Somebody removed our membership node, or the connection came back (watches are
            // lost, and the crate may even have started a new session by itself after an
            // expiry): check the membership node and our claims again, then everything else.
            Wake::Membership | Wake::Session(_) => {
                // Once leaving, we stay off the group.
                if let Phase::OnShift { .. } = self.phase {
                    self.phase = Phase::Joining;
                }
                self.changed.staff = true;
                self.changed.home = true;
                self.changed.rota = true;
            }
            Wake::Staff => self.changed.staff = true,
            // The one we minded went: its bucket may be an orphan now, and we mind the next.
            Wake::Rota => {
                self.changed.rota = true;
                self.changed.staff = true;
            }
            Wake::Config => self.changed.config = true,
            Wake::Home => self.changed.home = true,
            Wake::Bucket { .. } | Wake::Stop => {}
        }
    }
}
