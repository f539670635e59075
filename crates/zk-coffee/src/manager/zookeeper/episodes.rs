//! Rounds of answers turned into events: an episode of trouble opens with one
//! `zookeeper-degraded` per problem and closes with one `zookeeper-ok` (see the folder's text).

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::manager::event::{Event, Kind};

use super::mntr::*;

struct Episode {
    key: String,
    started: Instant,
    /// Every server that had a problem during the episode, in order.
    servers: Vec<String>,
}

/// What the rounds so far have shown: the episode under way, what is wrong in it, and which
/// servers have been said to refuse `mntr`. Each round's answers go through
/// [`Episodes::observe`], which gives the events they cause.
pub struct Episodes {
    ensemble: String,
    episode: Option<Episode>,
    /// The problem of each server that has one, as of the last round.
    wrong: BTreeMap<String, Problem>,
    /// Servers said (in the log) to refuse `mntr`, until they answer it.
    unreadable: Vec<String>,
    /// The start of the last episode, in ms since the epoch: the next one starts later, so
    /// no two episodes share a key.
    last_start_ms: u128,
}

impl Episodes {
    /// No episode yet: everything is assumed well until a round says otherwise.
    pub fn new(ensemble: &str) -> Episodes {
        Episodes {
            ensemble: ensemble.to_owned(),
            episode: None,
            wrong: BTreeMap::new(),
            unreadable: Vec::new(),
            last_start_ms: 0,
        }
    }

    /// Takes one round's answers (every server's) and returns the events they cause: a
    /// `zookeeper-degraded` for each server whose problem is new, then a `zookeeper-ok` if
    /// that ends an episode. Logs a server that refuses `mntr` once, and again only after it
    /// has answered it.
    pub fn observe(&mut self, answers: &BTreeMap<String, Answer>) -> Vec<Event> {
        for (server, answer) in answers {
            let refuses = *answer == Answer::NotWhitelisted;
            let said = self.unreadable.contains(server);
            if refuses && !said {
                log::info!("ZooKeeper {server} is up, but mntr is not in its 4lw.commands.whitelist: no statistics from it");
                self.unreadable.push(server.clone());
            } else if said && matches!(answer, Answer::Stats(_)) {
                log::info!("ZooKeeper {server} answers mntr now");
                self.unreadable.retain(|s| s != server);
            }
        }
        let mut events = Vec::new();
        let now = problems(answers);
        for (server, (problem, detail)) in &now {
            if self.wrong.get(server) == Some(problem) {
                continue;
            }
            let ensemble = &self.ensemble;
            let last = &mut self.last_start_ms;
            let episode = self.episode.get_or_insert_with(|| {
                let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0).max(*last + 1);
                *last = ms;
                Episode { key: format!("zookeeper:{ensemble}:{ms}"), started: Instant::now(), servers: Vec::new() }
            });
            if !episode.servers.contains(server) {
                episode.servers.push(server.clone());
            }
            events.push(
                Event::new(Kind::ZookeeperDegraded, ensemble, None, format!("{}:{server}", episode.key))
                    .with("server", server.as_str())
                    .with("problem", problem.name())
                    .with("detail", detail.as_str()),
            );
        }
        if !now.is_empty() {
            for server in self.wrong.keys().filter(|s| !now.contains_key(*s)) {
                log::info!("ZooKeeper {server} is fine again");
            }
        }
        self.wrong = now.into_iter().map(|(s, (p, _))| (s, p)).collect();
        if self.wrong.is_empty() {
            if let Some(episode) = self.episode.take() {
                let servers: Vec<Value> = episode.servers.iter().map(|s| Value::from(s.as_str())).collect();
                let seconds = (episode.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
                events.push(
                    Event::new(Kind::ZookeeperOk, &self.ensemble, None, episode.key)
                        .with("servers", servers)
                        .with("degraded_seconds", seconds),
                );
            }
        }
        events
    }
}
