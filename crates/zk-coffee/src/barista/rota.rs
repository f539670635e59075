//! The rota: who minds whom, so that a barista's departure is noticed by one or two colleagues,
//! not by all of them.
//!
//! Every barista of ours stands on the rota, `/zk-coffee/rota`, with an EPHEMERAL_SEQUENTIAL
//! place `{name}-{sequence}` (ZooKeeper's leader-election recipe, as the managers' election
//! uses it). Each minds the place just below its own with an exists watch: when that place
//! goes, it looks for orphans once and minds the next one below. The lowest, first on the rota,
//! also minds the group: it keeps the one children watch on `/barista_group` and on `/orders`,
//! which covers the newest barista (nobody stands above it), the members that have no place
//! (the original program's baristas, persistent members) and buckets made without a member.
//! So an arrival fires one watch (the first's) and a departure two (its minder's and the
//! first's), whatever the number of baristas; before the rota every barista watched the group
//! and the buckets, and every arrival woke them all.
//!
//! A barista takes its place before it makes its bucket, and gives it up before it leaves the
//! group: a bucket listed before the rota whose owner has a place is a colleague's coming,
//! waiting for its name or on shift, never an orphan, so looking for orphans claims no
//! newcomer's bucket (in a mass arrival that was thousands of claims taken and released).
//!
//! Minding is a duty, not a privilege: two baristas who both believe they are first both watch
//! the group, and the claims decide who adopts. What matters is that nobody goes unminded: a
//! barista's place goes with its session, so its minder hears of it even after a `kill -9`;
//! and whoever becomes first looks for orphans at once, since what the first it follows was
//! about to notice is now its own to notice.

use std::collections::BTreeSet;

use log::{debug, info, warn};

use crate::error::{Error, Result};
use crate::layout::{self, BaristaName, RotaPlace};
use crate::shop;

use super::{Barista, Wake};

/// How many times one look at the rota starts over (our place or the one below went meanwhile).
const MAX_LOOKS: usize = 4;

/// Our place on the rota and what we mind.
#[derive(Debug, Default)]
pub(super) struct Rota {
    /// Our place, and the session generation it belongs to (it goes with its session).
    mine: Option<(u64, RotaPlace)>,
    /// We were first on the rota when we last looked: we mind the group.
    first: bool,
}

/// Where a barista stands among the places listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Standing {
    /// Lowest: minds the group (and nobody below).
    First,
    /// Minds this place, the one just below.
    Minding(RotaPlace),
    /// Not listed: the place is gone.
    Absent,
}

/// The places among a listing of the rota, lowest first; strangers are skipped.
pub(super) fn places(listed: &[String]) -> Vec<RotaPlace> {
    let mut places: Vec<RotaPlace> = listed.iter().filter_map(|c| RotaPlace::parse(c)).collect();
    places.sort_unstable();
    places
}

/// Where the place with `sequence` stands among `places` (sorted, see [`places`]).
pub(super) fn standing(places: &[RotaPlace], sequence: u64) -> Standing {
    match places.iter().position(|p| p.sequence == sequence) {
        None => Standing::Absent,
        Some(0) => Standing::First,
        Some(i) => Standing::Minding(places[i - 1].clone()),
    }
}

/// The baristas standing on the rota.
pub(super) fn standing_baristas(listed: &[String]) -> BTreeSet<BaristaName> {
    listed.iter().filter_map(|c| RotaPlace::parse(c)).map(|p| p.barista).collect()
}

impl Rota {
    /// Whether we mind the group.
    pub(super) fn first(&self) -> bool {
        self.first
    }
}

impl Barista<'_> {
    /// Takes our place on the rota on the current session, unless we have one there.
    pub(super) fn take_place(&mut self) -> Result<()> {
        let session = &self.ctx.session;
        let generation = session.generation();
        if self.rota.mine.as_ref().is_some_and(|(g, _)| *g == generation) {
            return Ok(());
        }
        self.rota.first = false;
        let name = &self.ctx.config.name;
        let prefix = layout::rota_prefix(name);
        let tag = format!("{:016x}", rand::random::<u64>());
        let data = self.identity.registration(generation).encode();
        let (path, _) = session
            .create_ephemeral_sequential_protected(&prefix, &data, &tag)?
            .ok_or_else(|| shop::not_initialised(session, layout::ROTA))?;
        let place = RotaPlace::parse(layout::last_segment(&path))
            .ok_or_else(|| Error::internal(format!("{path} is no place on the rota")))?;
        debug!("standing on the rota as {path}");
        self.rota.mine = Some((generation, place));
        Ok(())
    }

    /// Gives up our place (leaving): our minder hears of it and looks for our orphans.
    pub(super) fn give_up_place(&mut self) -> Result<()> {
        self.rota.first = false;
        if let Some((generation, place)) = self.rota.mine.take() {
            if generation == self.ctx.session.generation() {
                self.ctx.session.delete(&layout::rota_entry(&place.name()), None)?;
            }
        }
        Ok(())
    }

    /// Looks at the rota: takes our place again if it went, and minds the one below ours, or
    /// the group if we are first. Becoming first, or finding the place below gone, is a reason
    /// to look for orphans.
    pub(super) fn mind_the_rota(&mut self) -> Result<()> {
        for _ in 0..MAX_LOOKS {
            self.take_place()?;
            let Some((_, mine)) = self.rota.mine.clone() else { continue };
            let session = &self.ctx.session;
            let listed = session.children(layout::ROTA)?.ok_or_else(|| shop::not_initialised(session, layout::ROTA))?;
            match standing(&places(&listed), mine.sequence) {
                Standing::Absent => {
                    warn!("my place {} on the rota went; standing again", layout::rota_entry(&mine.name()));
                    self.rota.mine = None;
                }
                Standing::First => {
                    if !self.rota.first {
                        info!("first on the rota: I mind the group for the others");
                        self.rota.first = true;
                        // What the one before us would have noticed is ours to notice now.
                        self.changed.staff = true;
                    }
                    return Ok(());
                }
                Standing::Minding(below) => {
                    if self.rota.first {
                        debug!("no longer first on the rota");
                        self.rota.first = false;
                    }
                    let path = layout::rota_entry(&below.name());
                    match self.ctx.watch_exists(&path, Wake::Rota)? {
                        // Gone since the listing: its barista left; look again.
                        Some(false) => {
                            self.ctx.armed.fired(&path);
                            self.changed.staff = true;
                        }
                        Some(true) => {
                            debug!("minding {} on the rota", below.barista);
                            return Ok(());
                        }
                        // Already minded (the watch is set and has not fired).
                        None => return Ok(()),
                    }
                }
            }
        }
        // The rota moved under every look: look again at the next wake-up.
        self.ctx.wakes.send(Wake::Rota);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// Who minds whom in a fleet: each place its own entry, the place it minds (`None`: first,
    /// it minds the group).
    fn minders(listed: &[String]) -> Vec<(String, Option<String>)> {
        let places = places(listed);
        places
            .iter()
            .map(|p| match standing(&places, p.sequence) {
                Standing::First => (p.barista.to_string(), None),
                Standing::Minding(below) => (p.barista.to_string(), Some(below.barista.to_string())),
                Standing::Absent => unreachable!("listed"),
            })
            .collect()
    }

    #[test]
    fn each_minds_the_one_below_and_the_first_minds_the_group() {
        // Listed in no particular order, with a stranger and a name holding '-' and digits.
        let listed = listing(&["c-0000000031", "junk", "a-1-0000000007", "b-0000000012", "d-0000000040"]);
        let who = minders(&listed);
        let expect = [("a-1", None), ("b", Some("a-1")), ("c", Some("b")), ("d", Some("c"))];
        let expect: Vec<(String, Option<String>)> = expect.iter().map(|(w, m)| (w.to_string(), m.map(str::to_owned))).collect();
        assert_eq!(who, expect);
        // Everybody but the newest is minded by exactly one colleague; the newest by the first,
        // through its watch on the group.
        let minded: Vec<&str> = who.iter().filter_map(|(_, m)| m.as_deref()).collect();
        assert_eq!(minded, ["a-1", "b", "c"]);
        assert_eq!(standing(&places(&listed), 99), Standing::Absent);
    }

    #[test]
    fn a_departure_moves_one_minder_and_the_first_passes_to_the_next() {
        let before = listing(&["a-0000000001", "b-0000000002", "c-0000000003", "d-0000000004"]);
        // b and c go at once (neighbours): d minds a; then a goes: d is first.
        let after = listing(&["a-0000000001", "d-0000000004"]);
        let (b, a) = (&minders(&before), &minders(&after));
        assert_eq!(b[3], ("d".into(), Some("c".into())));
        assert_eq!(a[1], ("d".into(), Some("a".into())));
        let last = listing(&["d-0000000004"]);
        assert_eq!(minders(&last), [("d".to_string(), None)]);
        // A barista that stands again (a new session) comes last, minding the newest.
        let again = listing(&["a-0000000001", "d-0000000004", "b-0000000009"]);
        assert_eq!(minders(&again)[2], ("b".into(), Some("d".into())));
        let names: Vec<String> = standing_baristas(&again).iter().map(ToString::to_string).collect();
        assert_eq!(names, ["a", "b", "d"]);
    }
}
