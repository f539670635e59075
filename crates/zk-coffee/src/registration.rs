//! What a barista writes into its membership node: facts about itself and a token that tells
//! its own (possibly stale) node from another barista's.
//!
//! The original program only lists `/barista_group`'s children and never reads their data, so
//! the data is ours to use. It is plain `key=value` lines, readable with `zkCli.sh get`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

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
}

impl Registration {
    /// The facts for this process.
    pub fn for_this_process(process_token: String, generation: u64, brew_ms: u64, started: SystemTime) -> Registration {
        Registration {
            process_token,
            generation,
            host: hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: started.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            brew_ms,
        }
    }

    /// The node's data.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "token={}.{}\nhost={}\npid={}\nversion={}\nstarted={}\nbrew_ms={}\n",
            self.process_token, self.generation, self.host, self.pid, self.version, self.started, self.brew_ms
        )
        .into_bytes()
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_round_trip() {
        let r = Registration::for_this_process("ab12".into(), 3, 2000, SystemTime::now());
        assert_eq!(Registration::decode(&r.encode()), Some(r));
    }

    #[test]
    fn foreign_data_is_not_a_registration() {
        for data in [&b""[..], b"0", b"\xff\xfe", b"token=x\nhost=h"] {
            assert_eq!(Registration::decode(data), None);
        }
    }
}
