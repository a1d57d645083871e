//! Health checks: the image's `HEALTHCHECK` or the container's `--health-*` settings, probed
//! as execs while the container runs, with dockerd's states (starting → healthy/unhealthy),
//! log (last five probes) and `health_status` events.
//!
//! Beyond dockerd (moby#28400, as Podman does): the label `berth.health-on-failure` (set by
//! `berth run --health-on-failure`, or by `docker run -l`) acts on a container that turns
//! unhealthy: `restart`, `stop`, `kill` or `none`.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::lock;
use crate::types::{Container, Status};
use crate::{Engine, EngineError, Result};

/// The label that asks for an action when the container turns unhealthy.
pub const ON_FAILURE_LABEL: &str = "berth.health-on-failure";

/// Docker's `HealthConfig`; durations in nanoseconds, 0 meaning "inherit" or "default".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args…]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// `State.Health` as dockerd shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Health {
    /// "starting", "healthy" or "unhealthy".
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLog>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthLog {
    pub start: chrono::DateTime<Utc>,
    pub end: chrono::DateTime<Utc>,
    /// 0 healthy, 1 unhealthy, -1 the probe could not run or timed out.
    pub exit_code: i64,
    pub output: String,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// dockerd keeps the last five results.
const KEEP_LOG: usize = 5;

impl HealthConfig {
    /// Docker's merge: each unset field of the container's check comes from the image's.
    pub fn merged_over(self, image: Option<&HealthConfig>) -> Option<HealthConfig> {
        let Some(img) = image else {
            return Some(self).filter(|c| !c.test.is_empty());
        };
        let pick = |own: i64, theirs: i64| if own != 0 { own } else { theirs };
        let merged = HealthConfig {
            test: if self.test.is_empty() {
                img.test.clone()
            } else {
                self.test
            },
            interval: pick(self.interval, img.interval),
            timeout: pick(self.timeout, img.timeout),
            start_period: pick(self.start_period, img.start_period),
            start_interval: pick(self.start_interval, img.start_interval),
            retries: pick(self.retries, img.retries),
        };
        Some(merged).filter(|c| !c.test.is_empty())
    }

    /// The image config's `Healthcheck` object.
    pub fn from_image_json(v: &serde_json::Value) -> Option<HealthConfig> {
        let test = v["Test"]
            .as_array()?
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        let n = |k: &str| v[k].as_i64().unwrap_or(0);
        Some(HealthConfig {
            test,
            interval: n("Interval"),
            timeout: n("Timeout"),
            start_period: n("StartPeriod"),
            start_interval: n("StartInterval"),
            retries: n("Retries"),
        })
    }

    pub fn disabled(&self) -> bool {
        self.test.first().map(String::as_str) == Some("NONE")
    }

    /// The probe's command line.
    fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
                Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
            }
            _ => None,
        }
    }

    /// Docker's checks on create (`--health-*` flags and the API's `Healthcheck`).
    pub fn validate(&self) -> Result<()> {
        let min = 1_000_000; // 1 ms, dockerd's minimum for every duration
        for (name, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if v != 0 && v < min {
                return Err(EngineError::invalid(format!(
                    "{name} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        if self.retries < 0 {
            return Err(EngineError::invalid(
                "Retries in Healthcheck cannot be negative",
            ));
        }
        Ok(())
    }
}

fn nanos(v: i64, default: Duration) -> Duration {
    u64::try_from(v)
        .ok()
        .filter(|&n| n > 0)
        .map(Duration::from_nanos)
        .unwrap_or(default)
}

impl Engine {
    /// Starts probing a container that has just started, if it has a health check. The task
    /// ends by itself when the container stops.
    pub(crate) fn start_health_monitor(&self, id: &str) {
        let Ok(c) = self.inspect_container(id) else {
            return;
        };
        let Some(check) = c.config.healthcheck.clone().filter(|h| !h.disabled()) else {
            return;
        };
        let Some(cmd) = check.command() else {
            return;
        };
        let Ok((_, _, live)) = self.lookup(id) else {
            return;
        };
        let mut running = lock(&live).running.subscribe();
        let started_at = c.state.started_at;
        let _ = self.update_container(id, |c| {
            c.state.health = Some(Health {
                status: "starting".into(),
                failing_streak: 0,
                log: Vec::new(),
            })
        });
        let engine = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let interval = nanos(check.interval, DEFAULT_INTERVAL);
            let start_interval = nanos(check.start_interval, DEFAULT_START_INTERVAL);
            let start_period = nanos(check.start_period, Duration::ZERO);
            let timeout = nanos(check.timeout, DEFAULT_TIMEOUT);
            let retries = if check.retries > 0 {
                check.retries
            } else {
                DEFAULT_RETRIES
            };
            let began = tokio::time::Instant::now();
            loop {
                let in_start_period = began.elapsed() < start_period;
                let starting = engine
                    .inspect_container(&id)
                    .ok()
                    .and_then(|c| c.state.health)
                    .is_some_and(|h| h.status == "starting");
                // dockerd probes at the start interval while still starting in the period.
                let wait = if in_start_period && starting {
                    start_interval
                } else {
                    interval
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = running.wait_for(|r| !*r) => return,
                }
                let still = engine.inspect_container(&id).ok().filter(|c| {
                    c.state.status == Status::Running && c.state.started_at == started_at
                });
                if still.is_none() {
                    return;
                }
                let start = Utc::now();
                let (exit_code, output) = match engine.exec_collect(&id, cmd.clone(), timeout).await
                {
                    Ok((Some(code), out)) => (i64::from(code), out),
                    Ok((None, _)) => (
                        -1,
                        format!(
                            "Health check exceeded timeout ({})",
                            humantime_secs(timeout)
                        ),
                    ),
                    Err(e) => (-1, e.to_string()),
                };
                let in_start_period = began.elapsed() < start_period;
                let result = HealthLog {
                    start,
                    end: Utc::now(),
                    exit_code,
                    output,
                };
                engine
                    .record_probe(&id, result, retries, in_start_period)
                    .await;
            }
        });
    }

    /// Applies one probe result as dockerd's `handleProbeResult` does; a failure inside the
    /// start period does not count against the container.
    async fn record_probe(&self, id: &str, result: HealthLog, retries: i64, in_start_period: bool) {
        let healthy = result.exit_code == 0;
        let change = self.update_container(id, |c| {
            let h = c.state.health.get_or_insert_with(Health::default);
            let old = h.status.clone();
            h.log.push(result);
            if h.log.len() > KEEP_LOG {
                let extra = h.log.len() - KEEP_LOG;
                h.log.drain(..extra);
            }
            if healthy {
                h.failing_streak = 0;
                h.status = "healthy".into();
            } else if !in_start_period || h.status != "starting" {
                h.failing_streak += 1;
                if h.failing_streak >= retries {
                    h.status = "unhealthy".into();
                }
            }
            (old != h.status).then(|| h.status.clone())
        });
        let Ok(Some(status)) = change else {
            return;
        };
        self.emit_container(id, &format!("health_status: {status}"), &[]);
        if status == "unhealthy" {
            self.on_unhealthy(id).await;
        }
    }

    async fn on_unhealthy(&self, id: &str) {
        let Ok(c) = self.inspect_container(id) else {
            return;
        };
        let action = on_failure_action(&c);
        let result = match action.as_str() {
            "restart" => self.restart_container(id, None, None).await,
            "stop" => self.stop_container(id, None, None).await,
            "kill" => self.kill_container(id, None).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(id, action, error = %e, "health-on-failure action");
        }
    }
}

/// The action asked for by the container's `berth.health-on-failure` label.
pub fn on_failure_action(c: &Container) -> String {
    c.config
        .labels
        .get(ON_FAILURE_LABEL)
        .cloned()
        .unwrap_or_default()
}

/// Checks a `berth.health-on-failure` value.
pub fn validate_on_failure(v: &str) -> Result<()> {
    match v {
        "" | "none" | "restart" | "stop" | "kill" => Ok(()),
        other => Err(EngineError::invalid(format!(
            "invalid health-on-failure action {other:?}: expected none, restart, stop or kill"
        ))),
    }
}

fn humantime_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_settings_override_the_image_field_by_field() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 5,
            retries: 7,
            ..Default::default()
        };
        let own = HealthConfig {
            interval: 9,
            ..Default::default()
        };
        let merged = own.merged_over(Some(&image));
        assert_eq!(
            merged,
            Some(HealthConfig {
                test: vec!["CMD".into(), "true".into()],
                interval: 9,
                retries: 7,
                ..Default::default()
            })
        );
        assert_eq!(HealthConfig::default().merged_over(None), None);
    }

    #[test]
    fn commands_and_limits() {
        let shell = HealthConfig {
            test: vec!["CMD-SHELL".into(), "test -f /ok".into()],
            ..Default::default()
        };
        assert_eq!(
            shell.command(),
            Some(vec!["/bin/sh".into(), "-c".into(), "test -f /ok".into()])
        );
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(none.disabled());
        let tiny = HealthConfig {
            interval: 10,
            ..shell.clone()
        };
        assert!(tiny.validate().is_err());
        assert!(validate_on_failure("restart").is_ok());
        assert!(validate_on_failure("explode").is_err());
        assert_eq!(humantime_secs(Duration::from_millis(1500)), "1.5s");
    }
}
