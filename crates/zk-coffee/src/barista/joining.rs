//! Coming on shift: the bucket first, then the EPHEMERAL membership node, each written with our
//! [`Registration`]; and the other ephemerals a barista takes (claims), with the same rules.
//!
//! **Restarts.** A barista started under a name whose membership node is still held by
//! another session waits for that node to go (a stale node of a dead session goes when the
//! server expires it), up to two session timeouts, then calls the name taken. When the
//! holder's registration shows a process on this host, in this boot, whose pid is gone or
//! reused (see [`crate::liveness`]), it is certainly dead: its node is replaced with ours in
//! one transaction, so no colleague ever sees us leave and adopts our bucket, and we serve
//! at once. A stop requested while waiting ends the shift cleanly.

use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use crate::error::{Error, Result};
use crate::layout::{self, BaristaName};
use crate::liveness::{self, Origin, Verdict};
use crate::registration::Registration;
use crate::security;
use crate::session::Session;
use crate::shutdown::Stop;

use super::{Barista, BaristaConfig, Milestone, Phase, Wake, MAX_WAIT};

/// How many times registering starts over because the session changed under it.
const MAX_REGISTER_PASSES: usize = 3;

/// Who we are, as written into every ephemeral node we take.
pub(super) struct Identity {
    /// Tells our membership and claim nodes (of any of our sessions) from another process's.
    process_token: String,
    /// Where this process runs (read once): recorded in our registrations, and compared with a
    /// stale holder's to tell whether it is certainly gone.
    origin: Origin,
    started: SystemTime,
    /// How long one coffee takes, in milliseconds, as our registration says.
    brew_ms: u64,
}

/// What [`Identity::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// We created the node just now.
    Created,
    /// The node was already ours, made earlier by this session.
    AlreadyOurs,
    /// Another process holds it.
    HeldByOther,
}

impl Identity {
    /// This process, started now, set up as `config` says.
    pub(super) fn of_this_process(config: &BaristaConfig) -> Identity {
        Identity {
            process_token: format!("{:016x}", rand::random::<u64>()),
            origin: Origin::of_this_process(config.boot_id.as_deref()),
            started: SystemTime::now(),
            brew_ms: config.brew_time.as_millis() as u64,
        }
    }

    pub(super) fn registration(&self, generation: u64) -> Registration {
        Registration::for_this_process(&self.origin, self.process_token.clone(), generation, self.brew_ms, self.started)
    }

    /// Creates the ephemeral `path` holding our registration on session `generation`. A node
    /// left by one of our own earlier sessions is replaced, and so is one left by a process
    /// that is certainly gone (see [`crate::liveness`]).
    pub(super) fn take(&self, session: &Session, path: &str, generation: u64) -> Result<Take> {
        self.take_from(session, path, &self.registration(generation)).map(|(take, _)| take)
    }

    /// [`Identity::take`] with `registration`, and when another holds the node, why it counts
    /// as alive (`None`: its data is no registration).
    fn take_from(&self, session: &Session, path: &str, registration: &Registration) -> Result<(Take, Option<String>)> {
        for _ in 0..3 {
            if session.create_ephemeral(path, &registration.encode())? {
                return Ok((Take::Created, None));
            }
            let Some(node) = session.read(path)? else { continue };
            if Some(node.ephemeral_owner) == session.session_id() {
                // Ours, whatever its data says (anyone may overwrite it in an open shop): put
                // our facts back.
                if node.data != registration.encode() {
                    match Registration::decode(&node.data) {
                        Some(r) if r.process_token == self.process_token => debug!("{path}: updating my registration"),
                        _ => warn!("{path} held data I did not write; writing my registration back"),
                    }
                    session.set_if_version(path, &registration.encode(), node.version)?;
                }
                return Ok((Take::AlreadyOurs, None));
            }
            let (data, version) = (node.data, node.version);
            match Registration::decode(&data) {
                // Made by this session: earlier, or by a create retried after a loss.
                Some(r) if r == *registration => return Ok((Take::AlreadyOurs, None)),
                Some(r) if r.process_token == self.process_token => {
                    debug!("replacing {path} left by my session {}", r.generation);
                    session.delete(path, Some(version))?;
                }
                Some(r) => match liveness::judge(&r.origin(), &self.origin, &liveness::Kernel) {
                    // Replaced, not deleted: nobody ever sees the node absent (a colleague
                    // seeing our membership node go would adopt our bucket).
                    Verdict::Gone(gone) => {
                        if session.replace_with_ephemeral(path, version, &registration.encode())? {
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
}

impl Barista<'_> {
    /// Takes our place on the rota, creates the bucket (if needed) and then our membership
    /// node, in that order, so a customer who sees us on shift can always order, and a
    /// colleague who sees our bucket before our membership node sees our place too (and takes
    /// us for a newcomer, not an orphan); then we are [`Phase::OnShift`].
    ///
    /// Meanwhile it holds the claim on its own bucket (unless an adopter still does), so that
    /// no other barista takes the bucket for an orphan in the moment before the membership
    /// node exists. `false` if a stop was requested while it waited for our name to be free.
    pub(super) fn register(&mut self) -> Result<bool> {
        let session = self.ctx.session.clone();
        let name = self.ctx.config.name.clone();
        // The shop may have been secured since we looked: our nodes must get its ACLs.
        security::install(&session)?;
        // The generation read first may be stale: the first call may find the session gone and
        // start a new one. Register again until a whole pass ran on one session.
        let mut joined = false;
        for _ in 0..MAX_REGISTER_PASSES {
            let generation = session.generation();
            let registration = self.identity.registration(generation);
            self.take_place()?;
            let own_claim = layout::claim(&name);
            let holding = self.identity.take_from(&session, &own_claim, &registration)?.0 != Take::HeldByOther;
            if session.ensure_persistent(&layout::bucket(&name), b"")? {
                debug!("created my bucket {}", layout::bucket(&name));
            }
            let take = self.join_group(&name, &registration)?;
            if holding {
                session.delete(&own_claim, None)?;
            }
            let Some(take) = take else { return Ok(false) };
            joined |= take == Take::Created;
            if session.generation() != generation {
                continue;
            }
            self.phase = Phase::OnShift { generation };
            if joined {
                info!("barista {name} is on shift (session {generation})");
                (self.ctx.milestones)(Milestone::OnShift { name: name.clone(), generation });
            } else {
                debug!("still on shift (session {generation})");
            }
            return Ok(true);
        }
        Err(Error::ConnectionLost { op: format!("register {name}"), waited: session.session_timeout() })
    }

    /// Creates our membership node, waiting for a stale one of a previous process to expire.
    /// `None` if a stop was requested while it waited: a stop is a clean end, not a name
    /// conflict.
    fn join_group(&mut self, name: &BaristaName, registration: &Registration) -> Result<Option<Take>> {
        let session = self.ctx.session.clone();
        let member = layout::member(name);
        // The previous holder of this name may be a dead session the server has not expired
        // yet (a restart under the same name): wait for it up to two session timeouts before
        // calling the name taken.
        let deadline = Instant::now() + session.session_timeout() * 2 + Duration::from_secs(1);
        let mut announced: Option<String> = None;
        let (mut take, mut holder) = self.identity.take_from(&session, &member, registration)?;
        let was_held = take == Take::HeldByOther;
        while take == Take::HeldByOther {
            if self.ctx.shutdown.state() != Stop::No {
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
            if self.ctx.watch_exists(&member, Wake::Membership)? != Some(false) {
                self.wait(deadline.saturating_duration_since(Instant::now()).min(MAX_WAIT));
            }
            (take, holder) = self.identity.take_from(&session, &member, registration)?;
        }
        self.ctx.watch_exists(&member, Wake::Membership)?;
        // Held by another when we came, ours now: we joined, even if the create (or the
        // replacing transaction) was retried after a connection loss and found itself done.
        if was_held && take == Take::AlreadyOurs {
            take = Take::Created;
        }
        Ok(Some(take))
    }
}
