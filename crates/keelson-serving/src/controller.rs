//! The rollout controller: starts rollouts, and on every tick judges the progressing ones whose
//! interval is over, moving traffic as [`crate::rollout::decide`] says. Each step is claimed in
//! the store (compare-and-set on the rollout's state) before traffic moves, so a step is taken
//! once even with several replicas ticking.

use crate::endpoint::{EndpointConfig, LiveEndpoint};
use crate::rollout::{
    decide, judgeable, Decision, RolloutSpec, RolloutState, RolloutStatus, RolloutStep, StatsSnapshot, WindowStats,
};
use crate::service::{ServingError, ServingService};
use keelson_core::clock::{Clock, SystemClock};
use keelson_egress::{EgressClient, EgressError};
use keelson_store::serving::StoredRollout;
use keelson_store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    pub id: i64,
    pub endpoint: String,
    pub spec: RolloutSpec,
    #[serde(flatten)]
    pub state: RolloutState,
    pub created: i64,
    pub updated: i64,
}

fn view(stored: &StoredRollout) -> Result<RolloutView, ServingError> {
    let corrupt =
        |what: &str, e: serde_json::Error| ServingError::Store(StoreError::Corrupt(format!("rollout {what}: {e}")));
    Ok(RolloutView {
        id: stored.id,
        endpoint: stored.endpoint.clone(),
        spec: serde_json::from_str(&stored.spec).map_err(|e| corrupt("spec", e))?,
        state: serde_json::from_str(&stored.state).map_err(|e| corrupt("state", e))?,
        created: stored.created,
        updated: stored.updated,
    })
}

/// Asks every webhook check of the rollout about this interval, all at once; the failures as
/// messages naming the check.
/// Webhooks are reached through the egress policy; their answers' bodies are not repeated.
async fn ask_webhooks(
    client: &Result<EgressClient, String>,
    id: i64,
    endpoint: &str,
    rollout: &RolloutView,
    window: &WindowStats,
) -> Vec<String> {
    let checks = &rollout.spec.checks.webhooks;
    if checks.is_empty() {
        return Vec::new();
    }
    let client = match client {
        Ok(client) => client,
        Err(error) => return vec![format!("webhook checks could not run: {error}")],
    };
    let asks = checks.iter().map(|check| {
        let body = serde_json::json!({
            "rollout": id,
            "endpoint": endpoint,
            "canary": rollout.spec.canary,
            "primary": rollout.state.primary,
            "weight": rollout.state.weight,
            "window": window,
            "check": check.name,
        });
        let request = url::Url::parse(&check.url)
            .map_err(|error| EgressError::InvalidDestination(error.to_string()))
            .and_then(|url| client.post(&url))
            .map(|request| request.timeout(Duration::from_millis(check.timeout_ms)).json(&body));
        async move {
            let request = match request {
                Ok(request) => request,
                Err(refused) => return Some(format!("check `{}` could not be asked: {refused}", check.name)),
            };
            match request.send().await {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("check `{}` answered {}", check.name, response.status().as_u16())),
                Err(error) => Some(format!("check `{}` did not answer: {}", check.name, EgressClient::explain(&error))),
            }
        }
    });
    futures::future::join_all(asks).await.into_iter().flatten().collect()
}

fn json<T: Serialize>(value: &T) -> Result<String, ServingError> {
    serde_json::to_string(value).map_err(|e| ServingError::InvalidArgument(e.to_string()))
}

fn split(primary: &str, canary: &str, canary_weight: u32) -> BTreeMap<String, u32> {
    let mut traffic = BTreeMap::new();
    if canary_weight < 100 {
        traffic.insert(primary.to_string(), 100 - canary_weight);
    }
    if canary_weight > 0 {
        traffic.insert(canary.to_string(), canary_weight);
    }
    traffic
}

impl ServingService {
    /// Starts moving traffic from the primary to the canary, `step_weight` at first.
    pub async fn start_rollout(
        &self,
        endpoint: &str,
        spec: RolloutSpec,
        actor: &str,
    ) -> Result<RolloutView, ServingError> {
        spec.check().map_err(ServingError::InvalidArgument)?;
        let _guard = self.inner.changes.lock().await;
        let live = self.live_or_not_found(endpoint)?;
        let canary = live.deployments.get(&spec.canary).ok_or_else(|| {
            ServingError::InvalidArgument(format!("canary `{}` is not a ready deployment of `{endpoint}`", spec.canary))
        })?;
        let primary = match &spec.primary {
            Some(primary) => primary.clone(),
            None => live
                .config
                .traffic
                .iter()
                .filter(|(name, share)| **name != spec.canary && **share > 0)
                .max_by_key(|(_, share)| **share)
                .map(|(name, _)| name.clone())
                .ok_or_else(|| {
                    ServingError::InvalidArgument(format!(
                        "no deployment of `{endpoint}` takes traffic to roll out from"
                    ))
                })?,
        };
        if primary == spec.canary || !live.deployments.contains_key(&primary) {
            return Err(ServingError::InvalidArgument(format!("primary `{primary}` must be another ready deployment")));
        }
        if let Some((other, _)) =
            live.config.traffic.iter().find(|(name, share)| **share > 0 && **name != primary && **name != spec.canary)
        {
            return Err(ServingError::InvalidArgument(format!(
                "a rollout moves traffic between two deployments, but `{other}` also takes traffic"
            )));
        }
        let now = SystemClock.now_millis();
        let state = RolloutState {
            status: RolloutStatus::Progressing,
            primary: primary.clone(),
            weight: spec.step_weight,
            failed_checks: 0,
            next_check_ms: now + spec.interval_seconds as i64 * 1000,
            baseline: StatsSnapshot::of(&canary.stats),
            steps: vec![RolloutStep {
                timestamp: now,
                weight: spec.step_weight,
                action: format!("started by {actor}: {} at {}%", spec.canary, spec.step_weight),
                window: None,
                failures: Vec::new(),
            }],
        };
        let mut config = live.config.clone();
        config.traffic = split(&primary, &spec.canary, spec.step_weight);
        config.mirror.remove(&spec.canary);
        let ready: Vec<&str> = live.deployments.keys().map(String::as_str).collect();
        config.check(&ready).map_err(ServingError::InvalidArgument)?;
        let stored = self.inner.store.create_rollout(endpoint, &json(&spec)?, &json(&state)?).await?;
        let reason = format!("rollout {}: {} at {}%", stored.id, spec.canary, spec.step_weight);
        if let Err(error) = self.apply_config(&live, config, actor, &reason).await {
            self.finish(&stored, &state, RolloutStatus::Aborted, &format!("traffic could not be set: {error}")).await?;
            return Err(error);
        }
        view(&stored)
    }

    pub async fn rollouts(&self, endpoint: &str, limit: i64) -> Result<Vec<RolloutView>, ServingError> {
        self.live_or_not_found(endpoint)?;
        self.inner.store.rollouts(endpoint, limit.clamp(1, 1000)).await?.iter().map(view).collect()
    }

    /// Stops the endpoint's progressing rollout and gives the primary all traffic back.
    pub async fn abort_rollout(&self, endpoint: &str, actor: &str) -> Result<RolloutView, ServingError> {
        let _guard = self.inner.changes.lock().await;
        let live = self.live_or_not_found(endpoint)?;
        let Some(stored) = self.progressing(endpoint).await? else {
            return Err(ServingError::Conflict(format!("endpoint `{endpoint}` has no progressing rollout")));
        };
        let rollout = view(&stored)?;
        let mut config = live.config.clone();
        config.traffic = split(&rollout.state.primary, &rollout.spec.canary, 0);
        self.apply_config(&live, config, actor, &format!("rollout {} aborted by {actor}", stored.id)).await?;
        self.finish(&stored, &rollout.state, RolloutStatus::Aborted, &format!("aborted by {actor}")).await?;
        let stored = self.inner.store.rollouts(endpoint, 1).await?;
        stored.first().map(view).transpose()?.ok_or_else(|| ServingError::NotFound("rollout vanished".into()))
    }

    /// Marks progressing rollouts of an endpoint aborted without moving traffic (the caller has).
    pub(crate) async fn abort_rollouts_of(&self, endpoint: &str, why: &str) -> Result<(), ServingError> {
        if let Some(stored) = self.progressing(endpoint).await? {
            let rollout = view(&stored)?;
            self.finish(&stored, &rollout.state, RolloutStatus::Aborted, why).await?;
        }
        Ok(())
    }

    async fn progressing(&self, endpoint: &str) -> Result<Option<StoredRollout>, ServingError> {
        Ok(self.inner.store.progressing_rollouts().await?.into_iter().find(|r| r.endpoint == endpoint))
    }

    async fn finish(
        &self,
        stored: &StoredRollout,
        state: &RolloutState,
        status: RolloutStatus,
        why: &str,
    ) -> Result<bool, ServingError> {
        let mut next = state.clone();
        next.status = status;
        next.steps.push(RolloutStep {
            timestamp: SystemClock.now_millis(),
            weight: next.weight,
            action: why.to_string(),
            window: None,
            failures: Vec::new(),
        });
        Ok(self.inner.store.update_rollout(stored.id, &stored.state, &json(&next)?, status.as_str()).await?)
    }

    /// Judges every progressing rollout whose interval is over.
    pub async fn tick_rollouts(&self) -> Result<(), ServingError> {
        let now = SystemClock.now_millis();
        for stored in self.inner.store.progressing_rollouts().await? {
            let rollout = view(&stored)?;
            if rollout.state.next_check_ms > now {
                continue;
            }
            let _guard = self.inner.changes.lock().await;
            let Some(live) = self.live(&stored.endpoint) else { continue };
            self.step(&stored, &rollout, &live, now).await?;
        }
        Ok(())
    }

    async fn step(
        &self,
        stored: &StoredRollout,
        rollout: &RolloutView,
        live: &LiveEndpoint,
        now: i64,
    ) -> Result<(), ServingError> {
        let spec = &rollout.spec;
        let state = &rollout.state;
        let (Some(canary), true) = (live.deployments.get(&spec.canary), live.deployments.contains_key(&state.primary))
        else {
            self.finish(stored, state, RolloutStatus::Aborted, "the canary or the primary is no longer ready").await?;
            return Ok(());
        };
        if live.config.traffic != split(&state.primary, &spec.canary, state.weight) {
            self.finish(stored, state, RolloutStatus::Aborted, "traffic was changed by hand; the rollout stopped")
                .await?;
            return Ok(());
        }
        let snapshot = StatsSnapshot::of(&canary.stats);
        let window = snapshot.since(&state.baseline);
        let signals = if judgeable(spec, &window) {
            ask_webhooks(&self.inner.http, stored.id, &stored.endpoint, rollout, &window).await
        } else {
            Vec::new()
        };
        let decision = decide(spec, state, &window, signals);
        let mut next = state.clone();
        next.next_check_ms = now + spec.interval_seconds as i64 * 1000;
        let (action, failures, weight) = match &decision {
            Decision::Wait => ("waiting: too few requests to judge".to_string(), Vec::new(), state.weight),
            Decision::Advance { weight } => {
                (format!("checks passed: {} to {weight}%", spec.canary), Vec::new(), *weight)
            }
            Decision::Promote => (format!("checks passed: {} promoted to 100%", spec.canary), Vec::new(), 100),
            Decision::Hold { failures } => {
                next.failed_checks += 1;
                (
                    format!("checks failed ({} of {})", next.failed_checks, spec.threshold),
                    failures.clone(),
                    state.weight,
                )
            }
            Decision::RollBack { failures } => {
                next.failed_checks += 1;
                (
                    format!("checks failed {} times: rolled back to {}", next.failed_checks, state.primary),
                    failures.clone(),
                    0,
                )
            }
        };
        if decision != Decision::Wait {
            next.baseline = snapshot;
        }
        next.weight = weight;
        next.status = match decision {
            Decision::Promote => RolloutStatus::Succeeded,
            Decision::RollBack { .. } => RolloutStatus::RolledBack,
            _ => RolloutStatus::Progressing,
        };
        let waited_before = next.steps.last().is_some_and(|last| last.action == action && decision == Decision::Wait);
        if waited_before {
            // A long wait for traffic is one step, not one per interval.
            next.steps.pop();
        }
        next.steps.push(RolloutStep { timestamp: now, weight, action: action.clone(), window: Some(window), failures });
        let next_json = json(&next)?;
        let claimed =
            self.inner.store.update_rollout(stored.id, &stored.state, &next_json, next.status.as_str()).await?;
        if !claimed || weight == state.weight {
            return Ok(());
        }
        let mut config: EndpointConfig = live.config.clone();
        config.traffic = split(&state.primary, &spec.canary, weight);
        let reason = format!("rollout {}: {action}", stored.id);
        if let Err(error) = self.apply_config(live, config, "rollout-controller", &reason).await {
            // The step is claimed but the traffic did not move: end the rollout saying so, rather
            // than leave a state the next tick would read as a change by hand.
            let claimed_row = StoredRollout { state: next_json, ..stored.clone() };
            let why = format!("traffic could not be moved to {weight}%: {error}");
            self.finish(&claimed_row, &next, RolloutStatus::Aborted, &why).await?;
        }
        Ok(())
    }

    /// Runs the controller until the process ends.
    pub fn spawn_rollout_controller(&self, tick: Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                if let Err(error) = service.tick_rollouts().await {
                    tracing::error!(%error, "rollout controller tick failed");
                }
            }
        })
    }
}
