//! Leaving the shift without losing an order.
//!
//! On a stop request (or after `leave_after_idle` without orders) the barista leaves
//! `/barista_group` first, so no new customer picks it (it marks its membership node as
//! leaving before deleting it: that tells the manager it left and was not lost), finishes the
//! order in hand and releases its claims. Its own queue is handed over: if other baristas are on shift they
//! adopt it; if nobody else is, it serves the queue itself for up to `drain_timeout`, and what
//! is left then waits in the bucket for the next barista to adopt. An empty bucket is removed.
//! A second stop request leaves at once: the order in hand stays queued and is adopted.
//!
//! It gives up its place on the rota just before it leaves the group (see `rota`), so the
//! colleague who minded it and the first on the rota both look for orphans.
//!
//! While it finishes with its own bucket the barista holds the claim on it
//! ([`Phase::Leaving`]), so nobody adopts it from under it; the claim is released last, which
//! lets the others adopt whatever was handed over.

use std::time::Instant;

use log::{debug, info, warn};

use crate::error::Result;
use crate::layout;
use crate::registration;
use crate::session::Removal;
use crate::shop;
use crate::shutdown::Stop;

use super::joining::Take;
use super::serving::Until;
use super::{Barista, Milestone, Phase, ShiftEnd};

/// How many times leaving retries removing a bucket that keeps refilling.
const MAX_BUCKET_REMOVALS: usize = 3;

impl Barista<'_> {
    /// Leaves the shift without losing an order (see the module docs).
    pub(super) fn leave(&mut self, end: ShiftEnd) -> Result<ShiftEnd> {
        let own_claim = self.leave_group()?;
        for owner in self.adoption.adopted() {
            self.release(&owner)?;
        }
        let result = if self.ctx.shutdown.state() == Stop::Now { Ok(end) } else { self.hand_over(end) };
        if own_claim {
            self.ctx.session.delete(&layout::claim(&self.ctx.config.name), None)?;
        }
        result
    }

    /// Takes the claim on our own bucket (unless an adopter holds it) and deletes our
    /// membership node, once: from then on we are [`Phase::Leaving`]. Returns whether we hold
    /// our own claim.
    pub(super) fn leave_group(&mut self) -> Result<bool> {
        if let Phase::Leaving { own_claim } = self.phase {
            return Ok(own_claim);
        }
        let session = &self.ctx.session;
        let me = &self.ctx.config.name;
        (self.ctx.milestones)(Milestone::Leaving);
        let own_claim = self.identity.take(session, &layout::claim(me), session.generation())? != Take::HeldByOther;
        // Off the rota before off the group: whoever looks at the group once we are off it
        // (the first on the rota, whose group watch fires) finds no place of ours, and takes
        // our bucket for what it is, an orphan held by its owner's claim until handed over.
        self.give_up_place()?;
        let session = &self.ctx.session;
        let me = &self.ctx.config.name;
        let member = layout::member(me);
        // Mark our node before deleting it: so the manager tells a barista that left from one
        // that was lost. Only a node of this session is ours to mark.
        if let Some(node) = session.read(&member)? {
            if Some(node.ephemeral_owner) == session.session_id()
                && !session.set_if_version(&member, &registration::marked_leaving(&node.data), node.version)?
            {
                debug!("{member} moved while I marked it leaving");
            }
        }
        session.delete(&member, None)?;
        self.phase = Phase::Leaving { own_claim };
        info!("barista {me} left the group");
        Ok(own_claim)
    }

    /// Serves or hands over what is queued in our bucket, then removes it if empty.
    fn hand_over(&mut self, end: ShiftEnd) -> Result<ShiftEnd> {
        let me = self.ctx.config.name.clone();
        let bucket = layout::bucket(&me);
        let drain_until = Instant::now() + self.ctx.config.drain_timeout;
        let mut removals = 0;
        loop {
            self.take_wakes();
            if !self.open_queue(&me)? {
                return Ok(end);
            }
            // Rejected orders go now, without waiting out their grace.
            self.serving.end_waits(&me);
            let Some(queued) = self.serving.queued(&me) else { return Ok(end) };
            let session = &self.ctx.session;
            if queued == 0 {
                match session.delete_if_empty(&bucket)? {
                    Removal::Deleted | Removal::Absent => {
                        info!("removed my empty bucket {bucket}");
                        return Ok(end);
                    }
                    Removal::NotEmpty if removals < MAX_BUCKET_REMOVALS => {
                        // A late order arrived (its event may still be on the way): look again.
                        removals += 1;
                        self.serving.relist(session, &me)?;
                        continue;
                    }
                    Removal::NotEmpty => {
                        warn!("leaving {bucket} in place: it holds children that are not orders");
                        return Ok(end);
                    }
                }
            }
            let others = shop::baristas_on_shift(session)?;
            if !others.is_empty() {
                info!("handing {queued} queued orders over to the {} baristas on shift", others.len());
                return Ok(end);
            }
            if Instant::now() >= drain_until || self.ctx.shutdown.state() == Stop::Now {
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
