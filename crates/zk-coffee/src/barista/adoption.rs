//! Adopting the buckets of baristas that are gone, and giving them back.
//!
//! A bucket whose owner is not in `/barista_group` is orphaned (its owner crashed, was killed,
//! lost its session or left with orders queued), and so is one whose owner's membership node is
//! persistent (a foreign client's: no barista). A barista looks for orphans when it comes on
//! shift and when a departure is noticed (see `rota`: the colleague who minded the one that
//! went, and the first on the rota, who watches the group and the buckets); the first to
//! create the EPHEMERAL claim `/zk-coffee/claims/{owner}` adopts the bucket and serves its
//! orders where they are, so the waiting customers' watches fire as usual. The claim dies with
//! its holder, so a crashed adopter's orphans are adopted again. An emptied orphaned bucket is
//! removed. An adopter watches the owner's membership node: when the owner comes back on shift
//! the adopter releases its claim and the owner serves its own bucket. Brewing is at least
//! once: an order whose barista died mid-brew is brewed again by the adopter; its customer is
//! told "served" exactly once, by the deletion.

use std::collections::BTreeSet;

use log::{debug, info};

use crate::error::Result;
use crate::layout::{self, BaristaName};
use crate::session::Removal;
use crate::shop::{self, Members};

use super::joining::Take;
use super::rota;
use super::serving::Until;
use super::{Barista, Wake};

/// The orphaned buckets we hold, and the group as we read it.
pub(super) struct Adoption {
    /// The group's members as read so far: who is a barista on shift.
    members: Members,
    /// Orphaned buckets whose claim we hold (on the registered session).
    adopted: BTreeSet<BaristaName>,
}

impl Default for Adoption {
    fn default() -> Adoption {
        Adoption { members: Members::new(true), adopted: BTreeSet::new() }
    }
}

impl Adoption {
    /// The session went, and our claims with it (they are ephemeral).
    pub(super) fn forget_claims(&mut self) {
        self.adopted.clear();
    }

    /// The buckets we adopted, by owner.
    pub(super) fn adopted(&self) -> Vec<BaristaName> {
        self.adopted.iter().cloned().collect()
    }
}

impl Barista<'_> {
    /// Claims the buckets whose owners are not on shift, and releases claims on buckets whose
    /// owners came back. Watches others' claims it finds held, and the membership node of each
    /// owner whose bucket we hold (to hear it come back); the first on the rota also watches the
    /// group and the buckets (see `rota`).
    ///
    /// The bucket listing comes first, then the group, then the rota: a barista takes its place
    /// on the rota before it makes its bucket, so a bucket listed whose owner has a place is a
    /// colleague coming on shift (or waiting for its name, or on shift), never an orphan; its
    /// bucket is not even claimed, let alone claimed and released.
    pub(super) fn look_for_orphans(&mut self) -> Result<()> {
        let ctx = &self.ctx;
        let session = &ctx.session;
        let minding_the_group = self.rota.first();
        debug!("looking for orphans{}", if minding_the_group { " (minding the group)" } else { "" });
        let listed = if minding_the_group {
            let watched =
                ctx.watch(layout::ORDERS, ctx.wakes.waker(Wake::Staff), |notify| session.watch_children(layout::ORDERS, notify))?;
            match watched {
                Some(listed) => {
                    if listed.is_none() {
                        // No node, no watch.
                        ctx.armed.fired(layout::ORDERS);
                    }
                    listed
                }
                None => session.children(layout::ORDERS)?,
            }
        } else {
            session.children(layout::ORDERS)?
        };
        let buckets = listed.ok_or_else(|| shop::not_initialised(session, layout::ORDERS))?;
        let group = if minding_the_group {
            let watched = ctx.watch(layout::BARISTA_GROUP, ctx.wakes.waker(Wake::Staff), |notify| {
                session.watch_children(layout::BARISTA_GROUP, notify)
            })?;
            match watched {
                Some(group) => group,
                None => session.children(layout::BARISTA_GROUP)?,
            }
        } else {
            session.children(layout::BARISTA_GROUP)?
        };
        let standing = match session.children(layout::ROTA)? {
            Some(listed) => rota::standing_baristas(&listed),
            None => return Err(shop::not_initialised(session, layout::ROTA)),
        };
        // Only ephemeral members are on shift: a persistent one (a foreign client's) is no
        // barista, and its bucket an orphan like any other. Those on the rota made their
        // nodes themselves (ephemeral): only the others' nodes are read.
        let on_shift: BTreeSet<BaristaName> =
            self.adoption.members.sort_out(session, group, &|name| standing.contains(name))?.into_iter().collect();
        for owner in self.adoption.adopted() {
            if on_shift.contains(&owner) {
                info!("{owner} is back on shift; handing its bucket back");
                self.release(&owner)?;
            }
        }
        let session = &self.ctx.session;
        let generation = session.generation();
        let me = &self.ctx.config.name;
        for bucket in buckets {
            let Ok(owner) = BaristaName::new(&bucket) else { continue };
            if owner == *me || on_shift.contains(&owner) || standing.contains(&owner) || self.adoption.adopted.contains(&owner) {
                continue;
            }
            let claim = layout::claim(&owner);
            debug!("claiming the bucket of {owner}");
            let take = self.identity.take(session, &claim, generation)?;
            if take != Take::HeldByOther {
                // The listings above may be stale: a barista coming on shift holds its own
                // claim until its membership node exists, and one leaving holds it until its
                // bucket is gone, so a fresh look now tells a real orphan.
                if shop::is_on_shift(session, &owner)? || !session.exists(&layout::bucket(&owner))? {
                    session.delete(&claim, None)?;
                    continue;
                }
                if take == Take::Created {
                    info!("adopting the orphaned bucket of {owner}");
                    self.ctx.metrics.adopted();
                }
                self.adoption.adopted.insert(owner);
            } else {
                // Someone else adopts it (or holds it while leaving); when the claim goes, we
                // look again. If it went already, before the watch was set, no event will come:
                // look again now.
                if self.ctx.watch_exists(&claim, Wake::Staff)? == Some(false) {
                    self.ctx.wakes.send(Wake::Staff);
                }
            }
        }
        // Nobody else watches the group for us: hear each owner whose bucket we hold come
        // back (one exists watch each). If it came back before the watch was set, look again.
        for owner in self.adoption.adopted() {
            if self.ctx.watch_exists(&layout::member(&owner), Wake::Staff)? == Some(true)
                && shop::is_on_shift(&self.ctx.session, &owner)?
            {
                self.ctx.wakes.send(Wake::Staff);
            }
        }
        Ok(())
    }

    /// Gives up our claim on `owner`'s bucket.
    pub(super) fn release(&mut self, owner: &BaristaName) -> Result<()> {
        self.adoption.adopted.remove(owner);
        self.serving.close(owner);
        self.ctx.session.delete(&layout::claim(owner), None)?;
        Ok(())
    }

    /// Serves an adopted bucket's queue; removes the bucket once empty and its owner is still
    /// away. Returns how many orders were taken in hand.
    pub(super) fn serve_adopted(&mut self, owner: &BaristaName) -> Result<usize> {
        if !self.open_queue(owner)? || self.serving.bucket_gone(owner) {
            self.release(owner)?;
            return Ok(0);
        }
        if self.serving.has_queued(owner) {
            return self.serve_queue(owner, Until::StopRequested);
        }
        let session = &self.ctx.session;
        if shop::is_on_shift(session, owner)? {
            return self.release(owner).map(|()| 0); // the owner is back
        }
        match session.delete_if_empty(&layout::bucket(owner))? {
            Removal::Deleted | Removal::Absent => {
                info!("removed the emptied orphaned bucket of {owner}");
                self.release(owner)?;
            }
            // A late order (its event is on the way) or a foreign child: look again later.
            Removal::NotEmpty => self.serving.relist(session, owner)?,
        }
        Ok(0)
    }
}
