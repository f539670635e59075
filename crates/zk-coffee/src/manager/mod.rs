//! The shop manager: a long-running role that follows every shop of an ensemble (or the ones
//! it is told to), tells people what happens there as [`event`]s, runs alert hooks, and
//! serves what it sees as metrics and JSON.
pub mod alerts;
pub mod event;

pub use alerts::{Alerts, HookConfig};
pub use event::{Event, Kind, ROOT_SHOP};
