//! The manager's JSON: each shop as the `shop-status --json` document ([`ShopStatus`], the one
//! serde model both use), built from the manager's picture rather than read afresh, at
//! `/api/shops` (every shop, by name) and `/api/shops/NAME` (one; the root shop is `/`,
//! written `%2F` in the path: no other character of a shop's name needs escaping).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::sales::Counts;
use crate::status::{Facts, OnShift, Orphan, QueueStatus, SalesStatus, ShopStatus};

use super::picture::Picture;
use super::Shared;
use crate::metrics::{Request, Response};

/// `/api/shops`: every shop followed, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shops {
    pub ensemble: String,
    pub shops: BTreeMap<String, ShopStatus>,
}

fn queue(picture: &Picture, bucket: &str, now: SystemTime) -> QueueStatus {
    let orders = picture.buckets.get(bucket);
    let oldest_ms = orders
        .and_then(|o| o.values().map(|o| o.placed).min())
        .map(|placed| now.duration_since(placed).unwrap_or_default().as_millis() as u64);
    QueueStatus { orders: orders.map_or(0, |o| o.len() as u32), oldest_ms }
}

/// The shop-status document of one picture.
pub fn status(picture: &Picture) -> ShopStatus {
    let now = SystemTime::now();
    let on_shift = picture
        .on_shift()
        .map(|(name, member)| OnShift {
            name: name.clone(),
            facts: member.registration.as_ref().map(Facts::from),
            queue: queue(picture, name, now),
        })
        .collect();
    let not_baristas = picture.members.iter().filter(|(_, m)| !m.is_barista()).map(|(name, _)| name.clone()).collect();
    let orphans = picture
        .buckets
        .keys()
        .filter(|bucket| !picture.members.get(*bucket).is_some_and(|m| m.is_barista()))
        .map(|owner| {
            let adopter = picture.claims.get(owner).map(|session| {
                picture
                    .members
                    .iter()
                    .find(|(_, m)| m.session == *session)
                    .and_then(|(_, m)| m.registration.as_ref())
                    .map_or_else(|| "?".to_owned(), |r| format!("{} (pid {})", r.host, r.pid))
            });
            Orphan { owner: owner.clone(), queue: queue(picture, owner, now), adopter }
        })
        .collect();
    let per_barista: BTreeMap<String, Counts> = picture.ledgers.clone();
    let mut per_coffee = Counts::new();
    for counts in per_barista.values() {
        for (coffee, n) in counts {
            *per_coffee.entry(coffee.clone()).or_default() += n;
        }
    }
    let total = per_coffee.values().sum();
    ShopStatus {
        menu: picture.menu.clone(),
        on_shift,
        not_baristas,
        orphans,
        sales: SalesStatus { total, per_coffee, per_barista },
    }
}

/// `/api/shops`.
pub fn shops(shared: &Shared) -> Shops {
    let shops = shared.with_shops(|shops| shops.iter().map(|(label, f)| (label.clone(), status(&f.picture))).collect());
    Shops { ensemble: shared.ensemble.clone(), shops }
}

/// `/api/shops/NAME` (the root shop is `/`, `%2F` in a path).
pub fn shop(shared: &Shared, name: &str) -> Option<ShopStatus> {
    shared.with_shops(|shops| shops.get(name).map(|f| status(&f.picture)))
}

/// The API's answer to `request`, if it is one of its paths.
pub fn route(shared: &Shared, request: &Request) -> Option<Response> {
    let path = request.path();
    if path == "/api/shops" || path == "/api/shops/" {
        return Some(Response::json(&shops(shared)));
    }
    let name = path.strip_prefix("/api/shops/")?;
    let name = if name.eq_ignore_ascii_case("%2F") { super::ROOT_SHOP } else { name };
    Some(match shop(shared, name) {
        Some(status) => Response::json(&status),
        None => Response::text(format!("no shop {name:?} is followed here\n")).with_status(404),
    })
}
