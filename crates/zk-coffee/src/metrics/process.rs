//! The standard `process_*` metrics, read from `/proc/self` at each scrape.
//!
//! The names and meanings are those of the official Prometheus clients' process collectors
//! (Go, Java, Python), so dashboards and alerts written for them work on our roles:
//! `process_cpu_seconds_total` (user + system), `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_start_time_seconds` (since the Unix epoch),
//! `process_open_fds` and `process_max_fds` (the soft limit). [`procfs`] reads and parses
//! `/proc/self/stat`, `/proc/self/fd` and `/proc/self/limits`; a file that cannot be read
//! leaves its metrics out of that scrape (logged at `debug`) rather than failing it. The start
//! time needs the boot time, from `/proc/stat`; where that is hidden (the systemd unit's
//! `ProcSubset=pid`) it comes from the clocks instead: now less the time since boot
//! (`CLOCK_BOOTTIME`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use log::debug;
use procfs::process::{LimitValue, Process};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The `process_*` metrics of this process, as a collector to register.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessCollector;

/// One reading of `/proc/self`; each part `None` if its file could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, in bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`None` also when unlimited).
    pub max_fds: Option<u64>,
}

impl Reading {
    /// Reads `/proc/self` now.
    pub fn now() -> Reading {
        let mut reading = Reading::default();
        let me = match Process::myself() {
            Ok(me) => me,
            Err(e) => {
                debug!("cannot read /proc/self: {e}");
                return reading;
            }
        };
        match me.stat() {
            Ok(stat) => {
                let ticks = procfs::ticks_per_second() as f64;
                reading.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
                reading.resident_bytes = Some(stat.rss * procfs::page_size());
                reading.virtual_bytes = Some(stat.vsize);
                reading.start_time_seconds = Some(boot_time() + stat.starttime as f64 / ticks);
            }
            Err(e) => debug!("cannot read /proc/self/stat: {e}"),
        }
        match me.fd_count() {
            Ok(n) => reading.open_fds = Some(n as u64),
            Err(e) => debug!("cannot count /proc/self/fd: {e}"),
        }
        match me.limits() {
            Ok(limits) => {
                if let LimitValue::Value(n) = limits.max_open_files.soft_limit {
                    reading.max_fds = Some(n);
                }
            }
            Err(e) => debug!("cannot read /proc/self/limits: {e}"),
        }
        reading
    }
}

/// When this host booted, in seconds since the Unix epoch.
fn boot_time() -> f64 {
    match procfs::boot_time_secs() {
        Ok(boot) => boot as f64,
        Err(e) => {
            debug!("cannot read the boot time from /proc/stat ({e}); reckoning it from the clocks");
            boot_time_from_clocks()
        }
    }
}

/// The boot time as the clocks tell it: now less the time since boot (suspensions included).
fn boot_time_from_clocks() -> f64 {
    let since_boot = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let since_boot = since_boot.tv_sec as f64 + since_boot.tv_nsec as f64 / 1e9;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    now - since_boot
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let r = Reading::now();
        if let Some(v) = r.cpu_seconds {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds.",
                Some(&Unit::Seconds),
                m.metric_type(),
            )?)?;
        }
        let gauges: [(&str, &str, Option<Unit>, Option<f64>); 5] = [
            ("process_resident_memory", "Resident memory size in bytes.", Some(Unit::Bytes), r.resident_bytes.map(|v| v as f64)),
            ("process_virtual_memory", "Virtual memory size in bytes.", Some(Unit::Bytes), r.virtual_bytes.map(|v| v as f64)),
            (
                "process_start_time",
                "Start time of the process since unix epoch in seconds.",
                Some(Unit::Seconds),
                r.start_time_seconds,
            ),
            ("process_open_fds", "Number of open file descriptors.", None, r.open_fds.map(|v| v as f64)),
            ("process_max_fds", "Maximum number of open file descriptors.", None, r.max_fds.map(|v| v as f64)),
        ];
        for (name, help, unit, value) in gauges {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, unit.as_ref(), m.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_clocks_tell_the_boot_time_of_proc_stat() {
        // /proc/stat's btime is whole seconds.
        let btime = procfs::boot_time_secs().expect("/proc/stat") as f64;
        let reckoned = boot_time_from_clocks();
        assert!((reckoned - btime).abs() < 2.0, "btime {btime}, from the clocks {reckoned}");
    }

    #[test]
    fn this_process_reads_sanely() {
        let r = Reading::now();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let started = r.start_time_seconds.expect("start time");
        // This test process started before now, and not days ago.
        assert!(started <= now + 1.0 && started > now - 86_400.0, "started {started}, now {now}");
        assert!(r.resident_bytes.expect("rss") > 0);
        assert!(r.virtual_bytes.expect("vsize") >= r.resident_bytes.unwrap());
        assert!(r.cpu_seconds.expect("cpu") >= 0.0);
        let open = r.open_fds.expect("open fds");
        // stdin, stdout, stderr at least; the limit above that.
        assert!(open >= 3, "{open}");
        assert!(r.max_fds.expect("max fds") >= open);
    }
}
