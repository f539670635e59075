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

impl Menu {
    /// Returns `coffee` if it is on the menu, or a usage error listing what is.
    pub fn check(&self, coffee: &str) -> Result<String, Error> {
        if self.contains(coffee) {
            Ok(coffee.to_owned())
        } else {
            Err(Error::usage(format!(
                "{coffee:?} is not on the menu (choose one of: {})",
                self.coffees.join(", ")
            )))
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
    fn picks_come_from_the_menu() {
        let menu = Menu::default();
        let mut rng = rand::rng();
        for _ in 0..50 {
            assert!(menu.contains(menu.pick(&mut rng)));
        }
    }
}
