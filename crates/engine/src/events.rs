//! The event stream (`docker events`): what the engine did, as Docker reports it.
//!
//! Events are broadcast to live subscribers and kept in a bounded ring for `--since`
//! (dockerd keeps 256; berth keeps 1024). They live in memory only, as in dockerd: a restart
//! starts a new history.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::types::Filters;
use crate::{lock, Engine};

const RING: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, `volume`, `network`, `daemon`.
    pub kind: String,
    pub action: String,
    pub actor_id: String,
    pub attributes: BTreeMap<String, String>,
    pub time: DateTime<Utc>,
}

pub(crate) struct Events {
    tx: broadcast::Sender<Event>,
    ring: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(RING).0,
            ring: Mutex::new(VecDeque::with_capacity(RING)),
        }
    }
}

/// Docker's event filters: `type`, `event`, `container`, `image`, `volume`, `label`.
pub fn event_matches(e: &Event, filters: &Filters) -> bool {
    filters.iter().all(|(k, vals)| {
        vals.iter().any(|v| match k.as_str() {
            "type" => &e.kind == v,
            // As moby#25798: these actions carry a suffix ("exec_start: sh", "health_status:
            // healthy"), and naming them without one matches every suffix.
            "event" => {
                &e.action == v
                    || (matches!(v.as_str(), "health_status" | "exec_create" | "exec_start")
                        && e.action.starts_with(&format!("{v}:")))
            }
            "container" => {
                e.kind == "container"
                    && (e.actor_id.starts_with(v.as_str()) || e.attributes.get("name") == Some(v))
            }
            "image" => {
                e.attributes.get("image") == Some(v)
                    || (e.kind == "image"
                        && (&e.actor_id == v || e.attributes.get("name") == Some(v)))
            }
            "volume" => e.kind == "volume" && &e.actor_id == v,
            "network" => {
                e.kind == "network"
                    && (e.actor_id.starts_with(v.as_str()) || e.attributes.get("name") == Some(v))
            }
            "label" => match v.split_once('=') {
                Some((lk, lv)) => e.attributes.get(lk).map(String::as_str) == Some(lv),
                None => e.attributes.contains_key(v),
            },
            _ => true,
        })
    })
}

impl Engine {
    pub(crate) fn emit(&self, kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) {
        let e = Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor_id: id.to_string(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time: Utc::now(),
        };
        let ev = &self.inner.events;
        {
            let mut ring = lock(&ev.ring);
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(e.clone());
        }
        // No subscriber is no error.
        let _ = ev.tx.send(e);
    }

    /// A container event with Docker's attributes: image, name and the container's labels.
    pub(crate) fn emit_container(&self, id: &str, action: &str, extra: &[(&str, &str)]) {
        let Ok(c) = self.inspect_container(id) else {
            return;
        };
        let mut attrs: Vec<(&str, &str)> = vec![
            ("image", c.config.image.as_str()),
            ("name", c.name.as_str()),
        ];
        attrs.extend(
            c.config
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        attrs.extend_from_slice(extra);
        self.emit("container", action, &c.id, &attrs);
    }

    /// Past events from `since` on (in the ring), and a receiver for what comes next.
    pub fn subscribe_events(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let ev = &self.inner.events;
        // Subscribe before copying the ring so that nothing falls between the two.
        let rx = ev.tx.subscribe();
        let past = match since {
            Some(t) => lock(&ev.ring)
                .iter()
                .filter(|e| e.time >= t)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_like_docker() {
        let e = Event {
            kind: "container".into(),
            action: "start".into(),
            actor_id: "abcdef".into(),
            attributes: [("name", "web"), ("image", "busybox"), ("tier", "front")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time: Utc::now(),
        };
        let f = |k: &str, v: &str| {
            let mut m = Filters::new();
            m.insert(k.into(), vec![v.into()]);
            m
        };
        assert!(event_matches(&e, &f("type", "container")));
        assert!(!event_matches(&e, &f("type", "image")));
        assert!(event_matches(&e, &f("container", "web")));
        assert!(event_matches(&e, &f("container", "abc")));
        assert!(event_matches(&e, &f("event", "start")));
        assert!(event_matches(&e, &f("label", "tier=front")));
        assert!(!event_matches(&e, &f("event", "die")));
        let health = Event {
            action: "health_status: healthy".into(),
            ..e.clone()
        };
        assert!(event_matches(&health, &f("event", "health_status")));
        assert!(event_matches(
            &health,
            &f("event", "health_status: healthy")
        ));
        assert!(!event_matches(&health, &f("event", "health")));
    }
}
