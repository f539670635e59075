//! What a barista writes into its membership node: facts about itself and a token that tells
//! its own (possibly stale) node from another barista's.
//!
//! The original program only lists `/barista_group`'s children and never reads their data, so
//! the data is ours to use. It is plain `key=value` lines, readable with `zkCli.sh get`.
//!
//! Besides host and pid it records the boot id, the pid namespace and the pid's start time,
//! so that a barista restarted on the same host can tell that the process behind a stale node
//! is certainly gone (see [`crate::liveness`]). Registrations written before those facts
//! existed still decode; the facts are then unknown.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::liveness::Origin;

/// The line a barista leaving on purpose adds to its membership node's data before deleting
/// the node: what tells the manager that it left rather than was lost.
pub const LEAVING_MARK: &str = "leaving=1";

/// `data` with the leaving mark added (once).
pub fn marked_leaving(data: &[u8]) -> Vec<u8> {
    let mut marked = data.to_vec();
    if !is_marked_leaving(data) {
        if !marked.is_empty() && !marked.ends_with(b"\n") {
            marked.push(b'\n');
        }
        marked.extend_from_slice(LEAVING_MARK.as_bytes());
        marked.push(b'\n');
    }
    marked
}

/// Whether a membership node's data carries the leaving mark (a line of its own).
pub fn is_marked_leaving(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| text.lines().any(|l| l.trim() == LEAVING_MARK))
}

/// The facts in a membership node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Identifies one barista process: `{random}` chosen at start. The node of an earlier
    /// session of the same process carries the same process token.
    pub process_token: String,
    /// Which session of that process wrote the node.
    pub generation: u64,
    /// Host the barista runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The zk-coffee version it runs.
    pub version: String,
    /// When the process started, in seconds since the Unix epoch.
    pub started: u64,
    /// How long it brews one coffee, in milliseconds.
    pub brew_ms: u64,
    /// The boot id of its host (32 hex digits), if known.
    pub boot_id: Option<String>,
    /// Its pid namespace (inode), if known.
    pub pid_ns: Option<u64>,
    /// When its pid started, in clock ticks since boot, if known.
    pub pid_start: Option<u64>,
}

impl Registration {
    /// The facts for the process at `origin` (read once, with [`Origin::of_this_process`]).
    pub fn for_this_process(
        origin: &Origin,
        process_token: String,
        generation: u64,
        brew_ms: u64,
        started: SystemTime,
    ) -> Registration {
        Registration {
            process_token,
            generation,
            host: origin.host.clone(),
            pid: origin.pid,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: started.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            brew_ms,
            boot_id: origin.boot_id.clone(),
            pid_ns: origin.pid_ns,
            pid_start: origin.pid_start,
        }
    }

    /// Where the process that wrote it ran, to tell whether it is gone
    /// ([`crate::liveness::judge`]).
    pub fn origin(&self) -> Origin {
        Origin {
            host: self.host.clone(),
            pid: self.pid,
            boot_id: self.boot_id.clone(),
            pid_ns: self.pid_ns,
            pid_start: self.pid_start,
        }
    }

    /// The node's data. Unknown facts are left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!(
            "token={}.{}\nhost={}\npid={}\nversion={}\nstarted={}\nbrew_ms={}\n",
            self.process_token, self.generation, self.host, self.pid, self.version, self.started, self.brew_ms
        );
        if let Some(id) = &self.boot_id {
            text.push_str(&format!("boot_id={id}\n"));
        }
        if let Some(ns) = self.pid_ns {
            text.push_str(&format!("pid_ns={ns}\n"));
        }
        if let Some(start) = self.pid_start {
            text.push_str(&format!("pid_start={start}\n"));
        }
        text.into_bytes()
    }

    /// Parses a node's data; `None` if it is not a registration we wrote.
    pub fn decode(data: &[u8]) -> Option<Registration> {
        let text = std::str::from_utf8(data).ok()?;
        let fields: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let (process_token, generation) = fields.get("token")?.rsplit_once('.')?;
        Some(Registration {
            process_token: process_token.to_owned(),
            generation: generation.parse().ok()?,
            host: fields.get("host")?.to_string(),
            pid: fields.get("pid")?.parse().ok()?,
            version: fields.get("version")?.to_string(),
            started: fields.get("started")?.parse().ok()?,
            brew_ms: fields.get("brew_ms")?.parse().ok()?,
            // Absent (an older barista) or unreadable: unknown, which counts as alive.
            boot_id: fields.get("boot_id").and_then(|id| crate::liveness::normalise_boot_id(id)),
            pid_ns: fields.get("pid_ns").and_then(|ns| ns.parse().ok()),
            pid_start: fields.get("pid_start").and_then(|t| t.parse().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_round_trip() {
        let r = Registration::for_this_process(&Origin::of_this_process(None), "ab12".into(), 3, 2000, SystemTime::now());
        assert!(r.pid_start.is_some(), "{r:?}");
        assert_eq!(Registration::decode(&r.encode()), Some(r));
    }

    #[test]
    fn registrations_of_older_baristas_decode_with_their_origin_unknown() {
        let old = b"token=ab12.3\nhost=h1\npid=42\nversion=0.1.0\nstarted=1700000000\nbrew_ms=2000\n";
        let r = Registration::decode(old).expect("an older registration");
        assert_eq!((r.host.as_str(), r.pid, r.generation), ("h1", 42, 3));
        assert_eq!((r.boot_id, r.pid_ns, r.pid_start), (None, None, None));
    }

    #[test]
    fn foreign_data_is_not_a_registration() {
        for data in [&b""[..], b"0", b"\xff\xfe", b"token=x\nhost=h"] {
            assert_eq!(Registration::decode(data), None);
        }
    }
    #[test]
    fn the_leaving_mark_is_a_line_of_its_own_and_keeps_the_facts() {
        let r = Registration::for_this_process(&Origin::of_this_process(None), "ab12".into(), 3, 2000, SystemTime::now());
        let marked = marked_leaving(&r.encode());
        assert!(is_marked_leaving(&marked));
        assert_eq!(marked_leaving(&marked), marked);
        assert_eq!(Registration::decode(&marked), Some(r.clone()));
        assert!(!is_marked_leaving(&r.encode()));
        assert!(!is_marked_leaving(b"host=leaving=1x\n"));
        assert!(is_marked_leaving(&marked_leaving(b"0")));
    }
}
