//! The menu: which coffees a customer may order and a barista will make.

use rand::seq::IndexedRandom;

use crate::error::Error;

/// The seed program's menu.
pub const DEFAULT_MENU: [&str; 4] = ["tesora", "swisswater", "jacob", "sogood"];

/// The coffees on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    coffees: Vec<String>,
}

impl Default for Menu {
    fn default() -> Self {
        Menu { coffees: DEFAULT_MENU.iter().map(|c| c.to_string()).collect() }
    }
}

/// Longest coffee name accepted.
pub const MAX_COFFEE_LEN: usize = 64;

/// Checks that `coffee` could be a coffee's name: 1-64 letters, digits, `-` or `_`. Says
/// nothing about whether a shop serves it.
pub fn check_name(coffee: &str) -> Result<&str, Error> {
    let ok = !coffee.is_empty()
        && coffee.len() <= MAX_COFFEE_LEN
        && coffee.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(coffee)
    } else {
        Err(Error::usage(format!("invalid coffee name {coffee:?}: use 1-{MAX_COFFEE_LEN} letters, digits, '-' or '_'")))
    }
}

impl Menu {
    /// A menu of these coffees, in this order; each name is checked, duplicates refused.
    pub fn new<S: AsRef<str>>(coffees: &[S]) -> Result<Menu, Error> {
        let mut list: Vec<String> = Vec::with_capacity(coffees.len());
        for coffee in coffees {
            let coffee = check_name(coffee.as_ref())?;
            if list.iter().any(|c| c == coffee) {
                return Err(Error::usage(format!("{coffee:?} is on the menu twice")));
            }
            list.push(coffee.to_owned());
        }
        if list.is_empty() {
            return Err(Error::usage("the menu is empty"));
        }
        Ok(Menu { coffees: list })
    }

    /// Returns `coffee` if it is on the menu, or a usage error listing what is.
    pub fn check(&self, coffee: &str) -> Result<String, Error> {
        if self.contains(coffee) {
            Ok(coffee.to_owned())
        } else {
            Err(Error::usage(format!("{coffee:?} is not on this shop's menu (choose one of: {})", self.coffees.join(", "))))
        }
    }

    /// Whether `coffee` is on the menu.
    pub fn contains(&self, coffee: &str) -> bool {
        self.coffees.iter().any(|c| c == coffee)
    }

    /// A coffee picked uniformly at random.
    pub fn pick(&self, rng: &mut impl rand::Rng) -> &str {
        self.coffees.choose(rng).map(String::as_str).unwrap_or(DEFAULT_MENU[0])
    }

    /// The coffees, in menu order.
    pub fn coffees(&self) -> &[String] {
        &self.coffees
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_menu_is_the_seeds() {
        let menu = Menu::default();
        assert_eq!(menu.coffees(), DEFAULT_MENU);
        assert_eq!(menu.check("jacob"), Ok("jacob".to_owned()));
        let err = menu.check("latte").unwrap_err();
        assert!(err.to_string().contains("tesora, swisswater, jacob, sogood"), "{err}");
    }

    #[test]
    fn menus_check_their_names() {
        assert_eq!(Menu::new(&["latte", "flat_white"]).map(|m| m.coffees().len()), Ok(2));
        assert!(Menu::new::<&str>(&[]).is_err());
        assert!(Menu::new(&["latte", "latte"]).is_err());
        for bad in ["", "a b", "caf\u{e9}", "x=y", "a,b", &"x".repeat(MAX_COFFEE_LEN + 1)] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn picks_come_from_the_menu() {
        let menu = Menu::default();
        let mut rng = rand::rng();
        for _ in 0..50 {
            assert!(menu.contains(menu.pick(&mut rng)));
        }
    }
}
