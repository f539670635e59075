//! How a customer chooses a barista: at random, as the original program did, or the shorter
//! queue of two picked at random; a queue at the maximum length is skipped, and when every
//! queue is, the shop is full. Queue lengths come from the load generator's [`Board`] when the
//! customer shares one, else from one read of each picked bucket.

use rand::seq::IndexedRandom;

use crate::error::{Error, Result};
use crate::layout::{self, BaristaName};
use crate::session::Session;

use super::board::Board;

/// The longest queue a customer joins by default. Far below what ZooKeeper can list in one
/// reply (1 MB holds some 50 000 order names), so a bucket never grows past what its barista
/// can read.
pub const DEFAULT_MAX_QUEUE: u32 = 10_000;

/// How a customer chooses among the baristas on shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Uniformly at random, as the original program did.
    Random,
    /// The shorter queue of two baristas picked at random ("the power of two choices"): two
    /// cheap reads, and far shorter waits than random under uneven load.
    ShorterOfTwo,
}

impl std::str::FromStr for Choice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Choice> {
        match s {
            "random" => Ok(Choice::Random),
            "shorter-of-two" => Ok(Choice::ShorterOfTwo),
            other => Err(Error::usage(format!("unknown choice {other:?}: use random or shorter-of-two"))),
        }
    }
}

/// Picks a barista among `candidates` whose queue is shorter than the maximum. Returns `None`
/// when a candidate's bucket turned out to be gone (added to `gone`: the caller looks again).
pub(super) fn choose(
    queues: &Queues,
    choice: Choice,
    max_queue: u32,
    candidates: &[BaristaName],
    gone: &mut Vec<BaristaName>,
) -> Result<Option<BaristaName>> {
    let mut rng = rand::rng();
    let picks: Vec<&BaristaName> = match choice {
        Choice::Random => candidates.choose_multiple(&mut rng, 1).collect(),
        Choice::ShorterOfTwo => candidates.choose_multiple(&mut rng, 2).collect(),
    };
    let mut best: Option<(u32, &BaristaName)> = None;
    let lengths = queues.lengths(&picks.iter().map(|b| (*b).clone()).collect::<Vec<_>>())?;
    for (barista, queue) in picks.iter().copied().zip(lengths) {
        match queue {
            None => {
                gone.push(barista.clone());
                return Ok(None);
            }
            Some(queue) if best.is_none_or(|(shortest, _)| queue < shortest) => best = Some((queue, barista)),
            Some(_) => {}
        }
    }
    match best {
        Some((queue, barista)) if queue < max_queue => Ok(Some(barista.clone())),
        _ => full_shop_fallback(queues, max_queue, candidates),
    }
}

/// The picks were full: take the shortest queue of all, or report the shop full.
fn full_shop_fallback(queues: &Queues, max_queue: u32, candidates: &[BaristaName]) -> Result<Option<BaristaName>> {
    let mut best: Option<(u32, &BaristaName)> = None;
    for (barista, queue) in candidates.iter().zip(queues.lengths(candidates)?) {
        if let Some(queue) = queue {
            if best.is_none_or(|(shortest, _)| queue < shortest) {
                best = Some((queue, barista));
            }
        }
    }
    match best {
        Some((queue, barista)) if queue < max_queue => Ok(Some(barista.clone())),
        _ => Err(Error::ShopFull { max_queue, baristas: candidates.len() }),
    }
}

/// Where a customer learns how long the queues are: the board, if it shares one, else a read
/// of each bucket.
pub(super) struct Queues<'a> {
    pub(super) session: &'a Session,
    pub(super) board: Option<&'a Board>,
}

impl Queues<'_> {
    /// How many orders wait for each of `baristas` (`None`: the bucket is gone).
    fn lengths(&self, baristas: &[BaristaName]) -> Result<Vec<Option<u32>>> {
        match self.board {
            Some(board) => board.queue_lengths(baristas),
            None => {
                let buckets: Vec<String> = baristas.iter().map(layout::bucket).collect();
                self.session.child_counts(&buckets)
            }
        }
    }
}
