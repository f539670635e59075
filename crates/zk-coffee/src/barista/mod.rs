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
//! **Adoption.** A bucket whose owner is not in `/barista_group` is orphaned (its owner
//! crashed, was killed, lost its session or left with orders queued), and so is one whose
//! owner's membership node is persistent (a foreign client's: no barista). Every barista watches
//! the group and the buckets; the first to create the EPHEMERAL claim
//! `/zk-coffee/claims/{owner}` adopts the bucket and serves its orders where they are, so the
//! waiting customers' watches fire as usual. The claim dies with its holder, so a crashed
//! adopter's orphans are adopted again. An emptied orphaned bucket is removed. When the owner
//! comes back on shift the adopter releases its claim and the owner serves its own bucket.
//! Brewing is at least once: an order whose barista died mid-brew is brewed again by the
//! adopter; its customer is told "served" exactly once, by the deletion.
//!
//! **Leaving.** On a stop request (or after `leave_after_idle` without orders) the barista
//! leaves `/barista_group` first, so no new customer picks it, finishes the order in hand and
//! releases its claims. Its own queue is handed over: if other baristas are on shift they
//! adopt it; if nobody else is, it serves the queue itself for up to `drain_timeout`, and what
//! is left then waits in the bucket for the next barista to adopt. An empty bucket is removed.
//! A second stop request leaves at once: the order in hand stays queued and is adopted.
//!
//! **Restarts.** A barista started under a name whose membership node is still held by
//! another session waits for that node to go (a stale node of a dead session goes when the
//! server expires it), up to two session timeouts, then calls the name taken. When the
//! holder's registration shows a process on this host, in this boot, whose pid is gone or
//! reused (see [`crate::liveness`]), it is certainly dead: its node is replaced with ours in
//! one transaction, so no colleague ever sees us leave and adopts our bucket, and we serve
//! at once. A stop requested while waiting ends the shift cleanly.
//!
//! **Outages.** While ZooKeeper is unreachable the barista waits with backoff and carries on
//! when it returns; after a lost session it registers again on the new one.
//!
//! Everything the barista waits for arrives on one channel (`Wake`); each wait has a
//! timeout.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};

use crate::config::{self, ShopConfig};
use crate::duration::human;
use crate::error::{Error, Result};
use crate::layout::{self, BaristaName, OrderName};
use crate::liveness::{self, Origin, Verdict};
use crate::lock;
use crate::order::{self, Payload};
use crate::registration::Registration;
use crate::sales::{Ledger, Sale};
use crate::security;
use crate::session::{NodeData, Removal, Session, SessionEvent, TreeEvent};
use crate::shop::{self, Members};
use crate::shutdown::{Shutdown, Stop};
use crate::wake::Wakes;

mod bucket;

pub use bucket::Bucket;

/// Longest single wait for a wake-up; a safety net, not a poll: nothing is re-read after it
/// unless something changed.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Longest pause between attempts while ZooKeeper is unreachable.
const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(5);
/// How many times registering starts over because the session changed under it.
const MAX_REGISTER_PASSES: usize = 3;
/// How many times leaving retries removing a bucket that keeps refilling.
const MAX_BUCKET_REMOVALS: usize = 3;
/// The most orders read at once and served in one transaction.
const MAX_BATCH: usize = 64;

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
    /// The shop's configuration changed.
    Config,
    /// The connection or session changed.
    Session(SessionEvent),
    /// Someone asked us to stop.
    Stop,
}

/// Works one shift: registers, serves until stopped (or idle), leaves. A first stop request
/// ends the shift gracefully, a second one at once (see the module docs). `milestones` hears
/// when the barista is on shift and when it starts leaving.
pub fn run(session: &Session, config: &BaristaConfig, shutdown: &Shutdown, milestones: &dyn Fn(Milestone)) -> Result<ShiftEnd> {
    shop::check_initialised(session)?;
    shop::ensure_extensions(session)?;
    let wakes = Wakes::new(shutdown, Wake::Stop).hear_session(session, Wake::Session);
    let ledger = Ledger::open(session, &config.name)?;
    let mut barista = Barista {
        milestones,
        ledger,
        shop_config: ShopConfig::default(),
        config_changed: true,
        session: session.clone(),
        config: config.clone(),
        shutdown: shutdown.clone(),
        wakes,
        process_token: format!("{:016x}", rand::random::<u64>()),
        origin: Origin::of_this_process(config.boot_id.as_deref()),
        started: SystemTime::now(),
        registered: None,
        staff_changed: true,
        members: Members::new(true),
        adopted: BTreeSet::new(),
        reported_foreign: HashSet::new(),
        queues: BTreeMap::new(),
        queues_generation: 0,
        next_epoch: 0,
        armed: Armed::default(),
        last_order: Instant::now(),
        left: None,
    };
    barista.shift()
}

struct Barista<'m> {
    milestones: &'m dyn Fn(Milestone),
    /// What we have served, counted in the same transaction that serves an order.
    ledger: Ledger,
    /// The shop's configuration as last read (the defaults until then).
    shop_config: ShopConfig,
    /// The configuration changed (or was never read).
    config_changed: bool,
    session: Session,
    config: BaristaConfig,
    shutdown: Shutdown,
    /// Where everything we wait for arrives.
    wakes: Wakes<Wake>,
    /// Tells our membership and claim nodes (of any of our sessions) from another process's.
    process_token: String,
    /// Where this process runs (read once): recorded in our registrations, and compared with a
    /// stale holder's to tell whether it is certainly gone.
    origin: Origin,
    started: SystemTime,
    /// The session generation our membership node belongs to.
    registered: Option<u64>,
    /// The group, the buckets or a claim changed since we last looked for orphans.
    staff_changed: bool,
    /// The group's members as read so far: who is a barista on shift.
    members: Members,
    /// Orphaned buckets whose claim we hold (on the registered session).
    adopted: BTreeSet<BaristaName>,
    /// Orders we may not touch, already logged, so each is reported once.
    reported_foreign: HashSet<String>,
    /// The buckets we serve (ours and the adopted ones), as their watches tell us.
    queues: BTreeMap<BaristaName, Bucket>,
    /// The session generation the queues' watches belong to.
    queues_generation: u64,
    /// The epoch of the next queue opened.
    next_epoch: u64,
    /// The one-shot watches set and not fired yet.
    armed: Armed,
    /// When we last served (or were given) an order.
    last_order: Instant,
    /// Set once we left the group: whether we then held the claim on our own bucket.
    left: Option<bool>,
}

/// What to do with an order after reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Make this coffee.
    Make(String),
    /// Rejected, removed, or found gone: nothing more to do.
    Done,
    /// Left for later (a rejected order waiting for its customer, or one we may not read).
    Skipped,
}

/// An order made and waiting to be served: its name, path and coffee.
struct Made {
    order: OrderName,
    path: String,
    coffee: String,
}

/// How long [`Barista::serve_queue`] goes on.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// While on shift: until a stop is requested.
    StopRequested,
    /// While leaving: until this instant or a second stop request.
    Drained(Instant),
}

/// What [`Barista::take_ephemeral`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// We created the node just now.
    Created,
    /// The node was already ours, made earlier by this session.
    AlreadyOurs,
    /// Another process holds it.
    HeldByOther,
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
        while self.shutdown.state() == Stop::No {
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

    /// Registers if needed, adopts orphans, serves what is queued, else waits for a wake-up.
    fn round(&mut self) -> Result<Round> {
        if self.registered != Some(self.session.generation()) {
            // Claims are ephemeral: a new session holds none of the old ones.
            self.adopted.clear();
            if !self.register()? {
                return Ok(Round::StoppedWaiting);
            }
            self.staff_changed = true;
        }
        // Each flag is cleared only once its work is done, so an outage in between means it is
        // done again, not forgotten.
        self.apply_config_change()?;
        if self.staff_changed {
            self.look_for_orphans()?;
            self.staff_changed = false;
        }
        self.sync_queues()?;
        let own = self.config.name.clone();
        if self.queues.get(&own).is_none_or(Bucket::is_gone) {
            warn!("my bucket {} vanished; making it again", layout::bucket(&own));
            self.queues.remove(&own);
            self.registered = None;
            return Ok(Round::Continue);
        }
        let mut served = self.serve_queue(&own, Until::StopRequested)?;
        for orphan in self.adopted.clone() {
            if self.shutdown.state() != Stop::No {
                break;
            }
            served += self.serve_adopted(&orphan)?;
        }
        if served > 0 || self.registered != Some(self.session.generation()) {
            self.last_order = Instant::now();
            return Ok(Round::Continue);
        }
        let wait = match self.config.leave_after_idle {
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
        let wait = match self.queues.values().filter_map(Bucket::next_due).min() {
            Some(due) => wait.min(due.saturating_duration_since(Instant::now())),
            None => wait,
        };
        // Wake-ups taken while listing may have left work (or a stop) to do: do it before
        // waiting for more.
        self.take_wakes();
        let pending = self.staff_changed
            || self.config_changed
            || self.queues.values().any(Bucket::is_stale)
            || self.registered != Some(self.session.generation())
            || self.queues.values().any(|q| !q.next(1, Instant::now()).is_empty());
        if self.shutdown.state() == Stop::No && !pending {
            self.wait(wait);
        }
        Ok(Round::Continue)
    }

    /// Waits up to `timeout` for a wake-up, then takes the ones queued behind it.
    fn wait(&mut self, timeout: Duration) {
        if let Some(wake) = self.wakes.wait(timeout) {
            self.note(wake);
        }
        self.take_wakes();
    }

    /// Takes the wake-ups already queued, without waiting.
    fn take_wakes(&mut self) {
        while let Some(wake) = self.wakes.take() {
            self.note(wake);
        }
    }

    fn note(&mut self, wake: Wake) {
        match wake {
            Wake::Bucket { epoch, event } => {
                // Events of a queue closed since are dropped.
                if let Some(queue) = self.queues.values_mut().find(|q| q.epoch() == epoch) {
                    queue.apply(&event);
                }
                return;
            }
            _ => debug!("woken by {wake:?}"),
        }
        match wake {
            // Somebody removed our membership node, or the connection came back (watches are
            // lost, and the crate may even have started a new session by itself after an
            // expiry): check the membership node and our claims again, then everything else.
            Wake::Membership | Wake::Session(_) => {
                self.registered = None;
                self.staff_changed = true;
            }
            Wake::Staff => self.staff_changed = true,
            Wake::Config => self.config_changed = true,
            Wake::Bucket { .. } | Wake::Stop => {}
        }
    }

    /// A closure for a one-shot watch on `path`: marks it fired and sends `wake`.
    fn armed_waker(&self, path: &str, wake: Wake) -> impl Fn() + Send + Sync + 'static {
        let (armed, path, wake) = (self.armed.clone(), path.to_owned(), self.wakes.waker(wake));
        move || {
            armed.fired(&path);
            wake();
        }
    }

    /// Whether `path` exists, watching it for `wake` unless a watch of ours on it has not
    /// fired yet (then `None`: that one will tell).
    fn watch_exists(&mut self, path: &str, wake: Wake) -> Result<Option<bool>> {
        if !self.armed.arm(path, self.session.generation()) {
            return Ok(None);
        }
        let exists = self.session.watch_exists(path, self.armed_waker(path, wake)).inspect_err(|_| self.armed.fired(path))?;
        Ok(Some(exists))
    }

    /// Re-reads the configuration if it changed (or was never read).
    fn apply_config_change(&mut self) -> Result<()> {
        if self.config_changed {
            self.read_config()?;
            self.config_changed = false;
        }
        Ok(())
    }

    /// Reads the shop's configuration and watches it. An unusable one is reported and the last
    /// good one kept (the barista keeps serving).
    fn read_config(&mut self) -> Result<()> {
        match config::watch(&self.session, self.wakes.waker(Wake::Config)) {
            Ok(new) => {
                if new != self.shop_config {
                    info!("shop menu: {}", new.menu.coffees().join(", "));
                    self.shop_config = new;
                }
                Ok(())
            }
            Err(e @ Error::BadConfig(_)) => {
                warn!("{e}; keeping the menu I have");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn registration(&self, generation: u64) -> Registration {
        Registration::for_this_process(
            &self.origin,
            self.process_token.clone(),
            generation,
            self.config.brew_time.as_millis() as u64,
            self.started,
        )
    }

    /// Creates the bucket (if needed) and then our membership node, in that order, so a
    /// customer who sees us on shift can always order.
    ///
    /// Meanwhile it holds the claim on its own bucket (unless an adopter still does), so that
    /// no other barista takes the bucket for an orphan in the moment before the membership
    /// node exists. `false` if a stop was requested while it waited for our name to be free.
    fn register(&mut self) -> Result<bool> {
        let name = self.config.name.clone();
        // The shop may have been secured since we looked: our nodes must get its ACLs.
        security::install(&self.session)?;
        // The generation read first may be stale: the first call may find the session gone and
        // start a new one. Register again until a whole pass ran on one session.
        let mut joined = false;
        for _ in 0..MAX_REGISTER_PASSES {
            let generation = self.session.generation();
            let registration = self.registration(generation);
            let own_claim = layout::claim(&name);
            let holding = self.take_ephemeral(&own_claim, &registration)? != Take::HeldByOther;
            if self.session.ensure_persistent(&layout::bucket(&name), b"")? {
                debug!("created my bucket {}", layout::bucket(&name));
            }
            let take = self.join_group(&name, &registration)?;
            if holding {
                self.session.delete(&own_claim, None)?;
            }
            let Some(take) = take else { return Ok(false) };
            joined |= take == Take::Created;
            if self.session.generation() != generation {
                continue;
            }
            self.registered = Some(generation);
            if joined {
                info!("barista {name} is on shift (session {generation})");
                (self.milestones)(Milestone::OnShift { name: name.clone(), generation });
            } else {
                debug!("still on shift (session {generation})");
            }
            return Ok(true);
        }
        Err(Error::ConnectionLost { op: format!("register {name}"), waited: self.session.session_timeout() })
    }

    /// Creates our membership node, waiting for a stale one of a previous process to expire.
    /// `None` if a stop was requested while it waited: a stop is a clean end, not a name
    /// conflict.
    fn join_group(&mut self, name: &BaristaName, registration: &Registration) -> Result<Option<Take>> {
        let member = layout::member(name);
        // The previous holder of this name may be a dead session the server has not expired
        // yet (a restart under the same name): wait for it up to two session timeouts before
        // calling the name taken.
        let deadline = Instant::now() + self.session.session_timeout() * 2 + Duration::from_secs(1);
        let mut announced: Option<String> = None;
        let (mut take, mut holder) = self.take_ephemeral_from(&member, registration)?;
        let was_held = take == Take::HeldByOther;
        while take == Take::HeldByOther {
            if self.shutdown.state() != Stop::No {
                info!("stopped while waiting for {member} to be free; I was not on shift");
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Err(Error::NameInUse(name.to_string()));
            }
            let why = holder.take().unwrap_or_else(|| "it holds data I did not write".into());
            if announced.as_ref() != Some(&why) {
                info!("{member} is held by another session; waiting for it to expire ({why})");
                announced = Some(why);
            }
            if self.watch_exists(&member, Wake::Membership)? != Some(false) {
                self.wait(deadline.saturating_duration_since(Instant::now()).min(MAX_WAIT));
            }
            (take, holder) = self.take_ephemeral_from(&member, registration)?;
        }
        self.watch_exists(&member, Wake::Membership)?;
        // Held by another when we came, ours now: we joined, even if the create (or the
        // replacing transaction) was retried after a connection loss and found itself done.
        if was_held && take == Take::AlreadyOurs {
            take = Take::Created;
        }
        Ok(Some(take))
    }

    /// Creates the ephemeral `path` holding `registration`. A node left by one of our own
    /// earlier sessions is replaced, and so is one left by a process that is certainly gone
    /// (see [`crate::liveness`]).
    fn take_ephemeral(&self, path: &str, registration: &Registration) -> Result<Take> {
        self.take_ephemeral_from(path, registration).map(|(take, _)| take)
    }

    /// [`Barista::take_ephemeral`], and when another holds the node, why it counts as alive
    /// (`None`: its data is no registration).
    fn take_ephemeral_from(&self, path: &str, registration: &Registration) -> Result<(Take, Option<String>)> {
        for _ in 0..3 {
            if self.session.create_ephemeral(path, &registration.encode())? {
                return Ok((Take::Created, None));
            }
            let Some(node) = self.session.read(path)? else { continue };
            if Some(node.ephemeral_owner) == self.session.session_id() {
                // Ours, whatever its data says (anyone may overwrite it in an open shop): put
                // our facts back.
                if node.data != registration.encode() {
                    match Registration::decode(&node.data) {
                        Some(r) if r.process_token == self.process_token => debug!("{path}: updating my registration"),
                        _ => warn!("{path} held data I did not write; writing my registration back"),
                    }
                    self.session.set_if_version(path, &registration.encode(), node.version)?;
                }
                return Ok((Take::AlreadyOurs, None));
            }
            let (data, version) = (node.data, node.version);
            match Registration::decode(&data) {
                // Made by this session: earlier, or by a create retried after a loss.
                Some(r) if r == *registration => return Ok((Take::AlreadyOurs, None)),
                Some(r) if r.process_token == self.process_token => {
                    debug!("replacing {path} left by my session {}", r.generation);
                    self.session.delete(path, Some(version))?;
                }
                Some(r) => match liveness::judge(&r, &self.origin, &liveness::Kernel) {
                    // Replaced, not deleted: nobody ever sees the node absent (a colleague
                    // seeing our membership node go would adopt our bucket).
                    Verdict::Gone(gone) => {
                        if self.session.replace_with_ephemeral(path, version, &registration.encode())? {
                            info!("took over {path} from a dead holder on this host ({gone})");
                            return Ok((Take::Created, None));
                        }
                        // It changed or went meanwhile (or the transaction was retried after
                        // it committed): look again.
                    }
                    Verdict::MaybeAlive(alive) => {
                        debug!("{path} is held by pid {} of {}: {alive}", r.pid, r.host);
                        return Ok((Take::HeldByOther, Some(alive)));
                    }
                },
                None => return Ok((Take::HeldByOther, None)),
            }
        }
        Ok((Take::HeldByOther, None))
    }

    /// Claims the buckets whose owners are not on shift, and releases claims on buckets whose
    /// owners came back. Watches the group, the buckets and others' claims.
    fn look_for_orphans(&mut self) -> Result<()> {
        // Only ephemeral members are on shift: a persistent one (a foreign client's) is no
        // barista, and its bucket an orphan like any other.
        let on_shift: BTreeSet<BaristaName> = match self.armed.arm(layout::BARISTA_GROUP, self.session.generation()) {
            true => {
                let notify = self.armed_waker(layout::BARISTA_GROUP, Wake::Staff);
                self.members.watch(&self.session, notify).inspect_err(|_| self.armed.fired(layout::BARISTA_GROUP))?
            }
            false => self.members.list(&self.session)?,
        }
        .into_iter()
        .collect();
        let buckets = match self.armed.arm(layout::ORDERS, self.session.generation()) {
            true => self
                .session
                .watch_children(layout::ORDERS, self.armed_waker(layout::ORDERS, Wake::Staff))
                .inspect(|listed| {
                    if listed.is_none() {
                        self.armed.fired(layout::ORDERS)
                    }
                })
                .inspect_err(|_| self.armed.fired(layout::ORDERS))?,
            false => self.session.children(layout::ORDERS)?,
        }
        .ok_or_else(|| shop::not_initialised(&self.session, layout::ORDERS))?;
        for owner in self.adopted.clone() {
            if on_shift.contains(&owner) {
                info!("{owner} is back on shift; handing its bucket back");
                self.release(&owner)?;
            }
        }
        let generation = self.session.generation();
        let me = self.config.name.clone();
        for bucket in buckets {
            let Ok(owner) = BaristaName::new(&bucket) else { continue };
            if owner == me || on_shift.contains(&owner) || self.adopted.contains(&owner) {
                continue;
            }
            let claim = layout::claim(&owner);
            let take = self.take_ephemeral(&claim, &self.registration(generation))?;
            if take != Take::HeldByOther {
                // The listings above may be stale: a barista coming on shift holds its own
                // claim until its membership node exists, and one leaving holds it until its
                // bucket is gone, so a fresh look now tells a real orphan.
                if shop::is_on_shift(&self.session, &owner)? || !self.session.exists(&layout::bucket(&owner))? {
                    self.session.delete(&claim, None)?;
                    continue;
                }
                if take == Take::Created {
                    info!("adopting the orphaned bucket of {owner}");
                }
                self.adopted.insert(owner);
            } else {
                // Someone else adopts it (or holds it while leaving); when the claim goes, we
                // look again. If it went already, before the watch was set, no event will come:
                // look again now.
                if self.watch_exists(&claim, Wake::Staff)? == Some(false) {
                    self.wakes.send(Wake::Staff);
                }
            }
        }
        Ok(())
    }

    /// Gives up our claim on `owner`'s bucket.
    fn release(&mut self, owner: &BaristaName) -> Result<()> {
        self.adopted.remove(owner);
        self.queues.remove(owner);
        self.session.delete(&layout::claim(owner), None)?;
        Ok(())
    }

    /// Makes the queues match the buckets we serve: our own and the adopted ones. A new
    /// session starts them all afresh (the watches went with the old one); after a reconnect
    /// they are listed again.
    fn sync_queues(&mut self) -> Result<()> {
        let generation = self.session.generation();
        if self.queues_generation != generation {
            self.queues.clear();
            self.queues_generation = generation;
        }
        let me = self.config.name.clone();
        self.queues.retain(|owner, _| *owner == me || self.adopted.contains(owner));
        for queue in self.queues.values_mut().filter(|q| q.is_stale()) {
            queue.relist(&self.session)?;
        }
        for owner in std::iter::once(me).chain(self.adopted.clone()) {
            self.open_queue(&owner)?;
        }
        Ok(())
    }

    /// Starts watching `owner`'s bucket unless we already do; `false` if it does not exist.
    fn open_queue(&mut self, owner: &BaristaName) -> Result<bool> {
        if self.queues.contains_key(owner) {
            return Ok(true);
        }
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let tx = self.wakes.sender();
        let notify = move |event| {
            let _ = tx.send(Wake::Bucket { epoch, event });
        };
        match Bucket::open(&self.session, owner, epoch, notify)? {
            Some(queue) => {
                self.queues.insert(owner.clone(), queue);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Serves an adopted bucket's queue; removes the bucket once empty and its owner is still
    /// away. Returns how many orders were taken in hand.
    fn serve_adopted(&mut self, owner: &BaristaName) -> Result<usize> {
        if !self.open_queue(owner)? || self.queues.get(owner).is_none_or(Bucket::is_gone) {
            self.release(owner)?;
            return Ok(0);
        }
        if self.queues.get(owner).is_some_and(|q| !q.is_empty()) {
            return self.serve_queue(owner, Until::StopRequested);
        }
        if shop::is_on_shift(&self.session, owner)? {
            return self.release(owner).map(|()| 0); // the owner is back
        }
        match self.session.delete_if_empty(&layout::bucket(owner))? {
            Removal::Deleted | Removal::Absent => {
                info!("removed the emptied orphaned bucket of {owner}");
                self.release(owner)?;
            }
            // A late order (its event is on the way) or a foreign child: look again later.
            Removal::NotEmpty => {
                if let Some(queue) = self.queues.get_mut(owner) {
                    queue.relist(&self.session)?;
                }
            }
        }
        Ok(0)
    }

    /// Whether to go on serving.
    fn serving(&self, until: Until) -> bool {
        match until {
            Until::StopRequested => self.shutdown.state() == Stop::No,
            Until::Drained(deadline) => self.shutdown.state() != Stop::Now && Instant::now() < deadline,
        }
    }

    /// Serves the orders queued in `owner`'s bucket, in the order they were placed, while
    /// `until` allows; returns how many were taken in hand. Up to [`MAX_BATCH`] orders are
    /// read at once; the coffees made one after another without a brew time in between are
    /// served together, in one transaction.
    fn serve_queue(&mut self, owner: &BaristaName, until: Until) -> Result<usize> {
        let mut taken = 0;
        loop {
            self.take_wakes();
            if !self.serving(until) {
                return Ok(taken);
            }
            let Some(queue) = self.queues.get(owner) else { return Ok(taken) };
            let batch = queue.next(MAX_BATCH, Instant::now());
            if batch.is_empty() {
                return Ok(taken);
            }
            let paths: Vec<String> = batch.iter().map(|order| layout::order(owner, *order)).collect();
            let reads = self.session.read_many(&paths)?;
            let mut made: Vec<Made> = Vec::new();
            for ((order, path), read) in batch.into_iter().zip(paths).zip(reads) {
                if !self.serving(until) {
                    break;
                }
                // A menu change applies from the next order on.
                self.apply_config_change()?;
                let coffee = match self.look_at(owner, order, &path, read)? {
                    Next::Make(coffee) => coffee,
                    Next::Done => {
                        taken += 1;
                        continue;
                    }
                    Next::Skipped => continue,
                };
                taken += 1;
                let brew_time = self.shop_config.brew_time(&coffee, self.config.brew_time);
                if !brew_time.is_zero() {
                    // The coffees made so far are ready: serve them before brewing this one.
                    self.serve_made(owner, &mut made)?;
                }
                info!("making {coffee} for {order}{}", whose(owner, &self.config.name));
                // Only a second stop request interrupts a brew: the order then stays queued.
                if !brew_time.is_zero() && !self.brew(order, brew_time)? {
                    return Ok(taken);
                }
                made.push(Made { order, path, coffee });
            }
            self.serve_made(owner, &mut made)?;
        }
    }

    /// Decides what to do with an order from what reading it gave.
    fn look_at(&mut self, owner: &BaristaName, order: OrderName, path: &str, read: Result<Option<NodeData>>) -> Result<Next> {
        let node = match read {
            Ok(Some(node)) => node,
            Ok(None) => {
                debug!("{path} was withdrawn before I started it");
                self.forget(owner, order);
                return Ok(Next::Done);
            }
            // Whoever made it chose an ACL that shuts us out: no customer of ours did that.
            Err(Error::NotAuthorized { .. }) => {
                if self.reported_foreign.insert(path.to_owned()) {
                    warn!("leaving {path} alone: its ACL does not let me read it");
                }
                self.hold(owner, order, None);
                return Ok(Next::Skipped);
            }
            Err(e) => return Err(e),
        };
        match Payload::parse(&node.data, &self.shop_config.menu) {
            Payload::Coffee(coffee) => Ok(Next::Make(coffee)),
            Payload::Invalid(reason) => {
                match self.session.set_if_version(path, &order::rejection(&reason), node.version) {
                    Ok(true) => warn!("rejected {path}: {reason}"),
                    // It changed or went meanwhile: look at it again.
                    Ok(false) => return Ok(Next::Done),
                    Err(Error::NotAuthorized { .. }) => {
                        if self.reported_foreign.insert(path.to_owned()) {
                            warn!("leaving {path} alone: {reason}, and its ACL does not let me reject it");
                        }
                        self.hold(owner, order, None);
                        return Ok(Next::Skipped);
                    }
                    Err(e) => return Err(e),
                }
                // Its customer withdraws it; if nobody does, it goes when its grace is over.
                self.hold(owner, order, Some(Instant::now() + order::REJECTION_GRACE));
                Ok(Next::Done)
            }
            Payload::Rejected(_) => self.clear_rejected(owner, order, path, &node),
        }
    }

    /// Brews one coffee for `brew_time`. Only a second stop request interrupts it: then
    /// `false`, and the order stays queued, to be adopted.
    fn brew(&mut self, order: OrderName, brew_time: Duration) -> Result<bool> {
        let brewed_at = Instant::now() + brew_time;
        while let Some(left) = brewed_at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            self.wait(left);
            match self.shutdown.state() {
                Stop::No => {}
                // Off the group at once, so no new customer picks us; the coffee is finished.
                Stop::Graceful => {
                    self.leave_group()?;
                }
                Stop::Now => {
                    info!("stopping at once: {order} stays queued");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Serves the coffees made: deletes their orders (which tells their customers) and counts
    /// them, in one transaction.
    fn serve_made(&mut self, owner: &BaristaName, made: &mut Vec<Made>) -> Result<()> {
        if made.is_empty() {
            return Ok(());
        }
        let orders: Vec<(String, String)> = made.iter().map(|m| (m.path.clone(), m.coffee.clone())).collect();
        let sales = self.ledger.serve(&self.session, &orders)?;
        let whose = whose(owner, &self.config.name);
        for (m, sale) in made.drain(..).zip(sales) {
            self.forget(owner, m.order);
            match sale {
                Sale::Served => info!("served {} ({}){whose}", m.coffee, m.order),
                Sale::Gone => info!("{} was withdrawn while I made it", m.order),
            }
        }
        Ok(())
    }

    /// The order is done with: no need to look at it again.
    fn forget(&mut self, owner: &BaristaName, order: OrderName) {
        if let Some(queue) = self.queues.get_mut(owner) {
            queue.remove(order);
        }
    }

    /// Leaves the order alone until `until` (`None`: for good).
    fn hold(&mut self, owner: &BaristaName, order: OrderName, until: Option<Instant>) {
        if let Some(queue) = self.queues.get_mut(owner) {
            queue.hold(order, until);
        }
    }

    /// A rejected order waits for its customer to withdraw it; nobody has after
    /// [`order::REJECTION_GRACE`] (or we are leaving), so it goes.
    fn clear_rejected(&mut self, owner: &BaristaName, order: OrderName, path: &str, node: &NodeData) -> Result<Next> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let waited = Duration::from_millis((now_ms - node.mtime_ms).max(0) as u64);
        if let Some(left) = order::REJECTION_GRACE.checked_sub(waited).filter(|_| self.left.is_none()) {
            self.hold(owner, order, Some(Instant::now() + left));
            return Ok(Next::Skipped);
        }
        if self.session.delete(path, Some(node.version))? {
            info!("removed {path}: rejected {} ago and not withdrawn", human(waited));
        }
        self.forget(owner, order);
        Ok(Next::Done)
    }

    /// Leaves the shift without losing an order (see the module docs). While it finishes with
    /// its own bucket the barista holds the claim on it, so nobody adopts it from under it; the
    /// claim is released last, which lets the others adopt whatever was handed over.
    fn leave(&mut self, end: ShiftEnd) -> Result<ShiftEnd> {
        let holding_own_claim = self.leave_group()?;
        for owner in self.adopted.clone() {
            self.release(&owner)?;
        }
        let result = if self.shutdown.state() == Stop::Now { Ok(end) } else { self.hand_over(end) };
        if holding_own_claim {
            self.session.delete(&layout::claim(&self.config.name), None)?;
        }
        result
    }

    /// Takes the claim on our own bucket (unless an adopter holds it) and deletes our
    /// membership node, once. Returns whether we hold our own claim.
    fn leave_group(&mut self) -> Result<bool> {
        if let Some(holding) = self.left {
            return Ok(holding);
        }
        let me = self.config.name.clone();
        (self.milestones)(Milestone::Leaving);
        let registration = self.registration(self.session.generation());
        let holding = self.take_ephemeral(&layout::claim(&me), &registration)? != Take::HeldByOther;
        self.session.delete(&layout::member(&me), None)?;
        self.left = Some(holding);
        info!("barista {me} left the group");
        Ok(holding)
    }

    /// Serves or hands over what is queued in our bucket, then removes it if empty.
    fn hand_over(&mut self, end: ShiftEnd) -> Result<ShiftEnd> {
        let me = self.config.name.clone();
        let bucket = layout::bucket(&me);
        let drain_until = Instant::now() + self.config.drain_timeout;
        let mut removals = 0;
        loop {
            self.take_wakes();
            if !self.open_queue(&me)? {
                return Ok(end);
            }
            // Rejected orders go now, without waiting out their grace.
            if let Some(queue) = self.queues.get_mut(&me) {
                queue.end_waits(Instant::now());
            }
            let queued = match self.queues.get(&me) {
                Some(queue) if !queue.is_gone() => queue.len(),
                _ => return Ok(end),
            };
            if queued == 0 {
                match self.session.delete_if_empty(&bucket)? {
                    Removal::Deleted | Removal::Absent => {
                        info!("removed my empty bucket {bucket}");
                        return Ok(end);
                    }
                    Removal::NotEmpty if removals < MAX_BUCKET_REMOVALS => {
                        // A late order arrived (its event may still be on the way): look again.
                        removals += 1;
                        if let Some(queue) = self.queues.get_mut(&me) {
                            queue.relist(&self.session)?;
                        }
                        continue;
                    }
                    Removal::NotEmpty => {
                        warn!("leaving {bucket} in place: it holds children that are not orders");
                        return Ok(end);
                    }
                }
            }
            let others = shop::baristas_on_shift(&self.session)?;
            if !others.is_empty() {
                info!("handing {queued} queued orders over to the {} baristas on shift", others.len());
                return Ok(end);
            }
            if Instant::now() >= drain_until || self.shutdown.state() == Stop::Now {
                warn!("leaving {queued} orders in {bucket} for the next barista to adopt");
                return Ok(end);
            }
            info!("nobody else is on shift: serving the {queued} queued orders before leaving");
            if self.serve_queue(&me, Until::Drained(drain_until))? == 0 {
                // Only orders we must leave alone are queued: they wait for the next barista.
                warn!("leaving {queued} orders in {bucket} for the next barista to adopt");
                return Ok(end);
            }
        }
    }
}

/// How a log line names whose bucket an order came from: nothing for our own.
fn whose(owner: &BaristaName, me: &BaristaName) -> String {
    if owner == me {
        String::new()
    } else {
        format!(" (adopted from {owner})")
    }
}

/// The one-shot watches a barista has set and that have not fired yet, by path, so that
/// looking again does not set a second watch on the same node (each would fire).
#[derive(Clone, Default)]
struct Armed(Arc<Mutex<(u64, HashSet<String>)>>);

impl Armed {
    /// Whether to set a watch on `path` now, on session `generation`: `true` (and marked set)
    /// unless one is outstanding. The watches of an earlier session went with it.
    fn arm(&self, path: &str, generation: u64) -> bool {
        let mut armed = lock(&self.0);
        if armed.0 != generation {
            *armed = (generation, HashSet::new());
        }
        armed.1.insert(path.to_owned())
    }

    /// The watch on `path` fired (or was never set after all).
    fn fired(&self, path: &str) {
        lock(&self.0).1.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_watched_again_only_after_its_watch_fired_or_its_session_went() {
        let armed = Armed::default();
        assert!(armed.arm("/barista_group", 1), "first look sets the watch");
        assert!(!armed.arm("/barista_group", 1), "a second look while it is outstanding does not");
        assert!(armed.arm("/orders", 1), "another path is another watch");
        armed.fired("/barista_group");
        assert!(armed.arm("/barista_group", 1), "after it fired, the next look sets it again");
        assert!(armed.arm("/orders", 2), "a new session holds none of the old watches");
        assert!(!armed.arm("/orders", 2));
    }
}
