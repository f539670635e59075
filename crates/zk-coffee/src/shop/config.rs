//! The shop's configuration, kept in ZooKeeper at `/zk-coffee/config` so that every barista
//! and customer of a shop reads the same: the menu, optional per-coffee brew times, and the
//! longest queue a customer joins.
//!
//! The data is `key=value` lines, readable and editable with `zkCli.sh`:
//!
//! ```text
//! menu=tesora,swisswater,jacob,sogood
//! brew.jacob=1.5s
//! max_queue=10000
//! ```
//!
//! `shop-init` writes it; baristas watch it and apply a change without a restart; customers read
//! it when they arrive. A shop without it (set up by the original program) uses the defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::duration;
use crate::error::{Error, Result};
use crate::layout;
use crate::menu::{self, Menu};
use crate::session::Session;

/// A shop's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShopConfig {
    /// What may be ordered.
    pub menu: Menu,
    /// Brew times that differ from the barista's own `--brew-time`.
    pub brew_times: BTreeMap<String, Duration>,
    /// The longest queue a customer joins, unless told otherwise.
    pub max_queue: Option<u32>,
}

impl ShopConfig {
    /// Parses `--menu` syntax: `tesora=2,jacob,sogood=500ms` (a brew time per coffee is
    /// optional).
    pub fn with_menu_spec(mut self, spec: &str) -> Result<ShopConfig> {
        let mut names = Vec::new();
        let mut brew_times = BTreeMap::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, brew) = match item.split_once('=') {
                Some((name, brew)) => (name.trim(), Some(duration::parse(brew)?)),
                None => (item, None),
            };
            names.push(menu::check_name(name)?.to_owned());
            if let Some(brew) = brew {
                brew_times.insert(name.to_owned(), brew);
            }
        }
        self.menu = Menu::new(&names)?;
        self.brew_times = brew_times;
        Ok(self)
    }

    /// How long `coffee` takes, given the barista's default.
    pub fn brew_time(&self, coffee: &str, default: Duration) -> Duration {
        self.brew_times.get(coffee).copied().unwrap_or(default)
    }

    /// The node's data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("menu={}\n", self.menu.coffees().join(","));
        for (coffee, brew) in &self.brew_times {
            out.push_str(&format!("brew.{coffee}={}\n", duration::exact(*brew)));
        }
        if let Some(max) = self.max_queue {
            out.push_str(&format!("max_queue={max}\n"));
        }
        out.into_bytes()
    }

    /// Parses the node's data; a one-line error says what is wrong with it.
    pub fn decode(data: &[u8]) -> Result<ShopConfig> {
        let bad = |why: String| Error::BadConfig(why);
        let text = std::str::from_utf8(data).map_err(|_| bad("it is not UTF-8".into()))?;
        let mut config = ShopConfig::default();
        let mut menu = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (key, value) = line.split_once('=').ok_or_else(|| bad(format!("{line:?} is not key=value")))?;
            match key.trim() {
                "menu" => {
                    let names: Vec<&str> = value.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
                    menu = Some(Menu::new(&names).map_err(|e| bad(e.to_string()))?);
                }
                "max_queue" => {
                    let max = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|m| *m > 0)
                        .ok_or_else(|| bad(format!("max_queue {value:?} is not a positive number")))?;
                    config.max_queue = Some(max);
                }
                key => match key.strip_prefix("brew.") {
                    Some(coffee) => {
                        let brew = duration::parse(value).map_err(|e| bad(e.to_string()))?;
                        config.brew_times.insert(coffee.to_owned(), brew);
                    }
                    None => return Err(bad(format!("unknown key {key:?}"))),
                },
            }
        }
        config.menu = menu.ok_or_else(|| bad("it has no menu= line".into()))?;
        if let Some(stray) = config.brew_times.keys().find(|c| !config.menu.contains(c)) {
            return Err(bad(format!("brew.{stray} names a coffee that is not on the menu")));
        }
        Ok(config)
    }
}

/// Reads the shop's configuration; the defaults if the shop has none.
pub fn load(session: &Session) -> Result<ShopConfig> {
    match session.data(layout::CONFIG)? {
        Some(data) => ShopConfig::decode(&data),
        None => Ok(ShopConfig::default()),
    }
}

/// Like [`load`], but an unusable configuration (written by a foreign or broken client) is
/// reported and the defaults used, so that it does not stop a customer.
pub fn load_or_default(session: &Session) -> Result<ShopConfig> {
    match load(session) {
        Err(e @ Error::BadConfig(_)) => {
            log::warn!("{e}; using the default menu");
            Ok(ShopConfig::default())
        }
        other => other,
    }
}

/// Like [`load`], and `notify` runs once when the configuration changes.
pub fn watch(session: &Session, notify: impl Fn() + Send + Sync + 'static) -> Result<ShopConfig> {
    match session.watch_data(layout::CONFIG, notify)? {
        Some(data) => ShopConfig::decode(&data),
        None => Ok(ShopConfig::default()),
    }
}

/// Writes the shop's configuration; `true` if the node was created.
pub fn store(session: &Session, config: &ShopConfig) -> Result<bool> {
    session.put(layout::CONFIG, &config.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_round_trip() {
        let config = ShopConfig::default().with_menu_spec("tesora=2,jacob,latte=500ms").expect("valid");
        assert_eq!(config.menu.coffees(), ["tesora", "jacob", "latte"]);
        assert_eq!(config.brew_time("latte", Duration::from_secs(9)), Duration::from_millis(500));
        assert_eq!(config.brew_time("jacob", Duration::from_secs(9)), Duration::from_secs(9));
        let config = ShopConfig { max_queue: Some(50), ..config };
        assert_eq!(ShopConfig::decode(&config.encode()), Ok(config));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        for (data, needle) in [
            (&b"\xff"[..], "UTF-8"),
            (b"hello", "key=value"),
            (b"brew.x=1", "no menu"),
            (b"menu=a,b\nbrew.c=1", "not on the menu"),
            (b"menu=a\nmax_queue=-3", "max_queue"),
            (b"menu=a b", "invalid coffee name"),
            (b"menu=a\ncolour=red", "unknown key"),
        ] {
            let err = ShopConfig::decode(data).expect_err("garbage accepted");
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn menu_specs_are_checked() {
        assert!(ShopConfig::default().with_menu_spec("").is_err());
        assert!(ShopConfig::default().with_menu_spec("a=fast").is_err());
        assert!(ShopConfig::default().with_menu_spec("a,a").is_err());
    }
}
