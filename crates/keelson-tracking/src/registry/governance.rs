//! Alias moves under promotion policies, approvals, the alias history and rollback. Every path
//! that moves an alias (MLflow's `SetRegisteredModelAlias`, Keelson's API, the CLI) comes here,
//! so a policy cannot be side-stepped by choosing another door.

use super::validation::*;
use super::RegistryService;
use crate::TrackingError;
use keelson_core::promotion::{PromotionFacts, PromotionPolicy};
use keelson_core::registry::{AliasEvent, Approval, ModelVersion};
use keelson_store::registry::{AliasChange, StoredPolicy};
use serde::Serialize;
use std::collections::HashMap;

/// Who is acting, with the roles their credentials carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub roles: Vec<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>, roles: Vec<String>) -> Self {
        Self { name: name.into(), roles }
    }
}

/// A policy as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyView {
    pub name: String,
    pub alias: String,
    pub policy: PromotionPolicy,
    pub updated_by: String,
    pub updated_timestamp: i64,
}

fn view(stored: StoredPolicy) -> Result<PolicyView, TrackingError> {
    let policy = serde_json::from_str(&stored.policy_json).map_err(|e| {
        TrackingError::Invalid(format!("stored policy for alias '{}' is unreadable: {e}", stored.alias))
    })?;
    Ok(PolicyView {
        name: stored.name,
        alias: stored.alias,
        policy,
        updated_by: stored.updated_by,
        updated_timestamp: stored.updated_timestamp,
    })
}

impl RegistryService {
    /// Points `alias` at `version` if the alias's promotion policy allows it, recording who moved
    /// it and why.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        validate_alias_not_reserved(alias)?;
        let number = parse_version(version)?;
        let candidate = self.store().get_model_version(name, number).await?;
        let current = self.store().alias_holder(name, alias).await?;
        if current != Some(number) {
            self.enforce_policy(name, alias, &candidate, current).await?;
        }
        let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or("set");
        let change = AliasChange { actor: &actor.name, reason, expected_current: Some(current) };
        Ok(self.store().set_registered_model_alias(name, alias, number, &change).await?)
    }

    pub async fn delete_alias(
        &self,
        name: &str,
        alias: &str,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or("deleted");
        let change = AliasChange { actor: &actor.name, reason, expected_current: None };
        Ok(self.store().delete_registered_model_alias(name, alias, &change).await?)
    }

    /// Moves the alias back to the version it pointed at before its last move. The previous
    /// holder was once allowed to hold it, so the policy is not consulted: rollback must work
    /// in the minute production is on fire.
    pub async fn rollback_alias(&self, name: &str, alias: &str, actor: &Actor) -> Result<AliasEvent, TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        self.store().require_registered_model(name).await?;
        let history = self.store().alias_history(name, Some(alias)).await?;
        let current = self.store().alias_holder(name, alias).await?;
        let last = history.last().ok_or_else(|| {
            TrackingError::Invalid(format!("alias '{alias}' of model '{name}' has never moved; nothing to roll back"))
        })?;
        let Some(previous) = last.from_version.as_deref() else {
            return Err(TrackingError::Invalid(format!(
                "alias '{alias}' of model '{name}' had no holder before its last move; nothing to roll back to"
            )));
        };
        let previous = parse_version(previous)?;
        self.store().get_model_version(name, previous).await.map_err(|_| {
            TrackingError::Invalid(format!(
                "cannot roll back alias '{alias}' of model '{name}': its previous holder, version {previous}, was deleted"
            ))
        })?;
        let change = AliasChange {
            actor: &actor.name,
            reason: &format!("rollback (undoing event {})", last.id),
            expected_current: Some(current),
        };
        self.store().set_registered_model_alias(name, alias, previous, &change).await?;
        let history = self.store().alias_history(name, Some(alias)).await?;
        history.last().cloned().ok_or_else(|| TrackingError::Invalid("alias history is empty after rollback".into()))
    }

    pub async fn alias_history(&self, name: &str, alias: Option<&str>) -> Result<Vec<AliasEvent>, TrackingError> {
        validate_model_name(name)?;
        if let Some(alias) = alias {
            validate_alias(alias)?;
        }
        self.store().require_registered_model(name).await?;
        Ok(self.store().alias_history(name, alias).await?)
    }

    // ---- policies ----

    pub async fn set_policy(
        &self,
        name: &str,
        alias: &str,
        policy: &PromotionPolicy,
        actor: &Actor,
    ) -> Result<PolicyView, TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        validate_alias_not_reserved(alias)?;
        policy.validate().map_err(TrackingError::Invalid)?;
        let json = serde_json::to_string(policy).map_err(|e| TrackingError::Invalid(e.to_string()))?;
        view(self.store().set_promotion_policy(name, alias, &json, &actor.name).await?)
    }

    pub async fn get_policy(&self, name: &str, alias: &str) -> Result<Option<PolicyView>, TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        self.store().require_registered_model(name).await?;
        self.store().promotion_policy(name, alias).await?.map(view).transpose()
    }

    pub async fn list_policies(&self, name: &str) -> Result<Vec<PolicyView>, TrackingError> {
        validate_model_name(name)?;
        self.store().promotion_policies(name).await?.into_iter().map(view).collect()
    }

    pub async fn delete_policy(&self, name: &str, alias: &str) -> Result<bool, TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        Ok(self.store().delete_promotion_policy(name, alias).await?)
    }

    // ---- approvals ----

    /// Records the actor's approval of a version for an alias, with the roles they hold now.
    pub async fn approve(
        &self,
        name: &str,
        version: &str,
        alias: &str,
        actor: &Actor,
        comment: Option<&str>,
    ) -> Result<Approval, TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        let version = parse_version(version)?;
        if actor.name == "anonymous" {
            return Err(TrackingError::Invalid(
                "approvals need an identified user: send a token configured in auth.tokens_file".into(),
            ));
        }
        let approval = Approval {
            name: name.to_string(),
            version: version.to_string(),
            alias: alias.to_string(),
            approver: actor.name.clone(),
            roles: actor.roles.clone(),
            comment: comment.map(str::to_string),
            timestamp: 0,
        };
        Ok(self.store().approve_model_version(&approval).await?)
    }

    pub async fn approvals(
        &self,
        name: &str,
        version: &str,
        alias: Option<&str>,
    ) -> Result<Vec<Approval>, TrackingError> {
        validate_model_name(name)?;
        let version = parse_version(version)?;
        self.store().get_model_version(name, version).await?;
        Ok(self.store().approvals(name, version, alias).await?)
    }

    /// The metrics a policy sees for a version: its source run's latest metrics, overlaid with
    /// its logged model's metrics.
    pub async fn version_metrics(&self, version: &ModelVersion) -> Result<HashMap<String, f64>, TrackingError> {
        self.metrics_of(version.run_id.as_deref(), version.model_id.as_deref()).await
    }

    pub(super) async fn metrics_of(
        &self,
        run_id: Option<&str>,
        model_id: Option<&str>,
    ) -> Result<HashMap<String, f64>, TrackingError> {
        let mut metrics = HashMap::new();
        if let Some(run_id) = run_id {
            if let Ok(run) = self.store().get_run(run_id).await {
                for metric in run.data.metrics {
                    metrics.insert(metric.key, metric.value);
                }
            }
        }
        if let Some(model_id) = model_id {
            if let Ok(model) = self.store().get_logged_model(model_id).await {
                for metric in model.metrics {
                    metrics.insert(metric.key, metric.value);
                }
            }
        }
        Ok(metrics)
    }

    async fn enforce_policy(
        &self,
        name: &str,
        alias: &str,
        candidate: &ModelVersion,
        current: Option<i64>,
    ) -> Result<(), TrackingError> {
        let Some(stored) = self.store().promotion_policy(name, alias).await? else {
            return Ok(());
        };
        let policy = view(stored)?.policy;
        if policy.is_empty() {
            return Ok(());
        }
        let champion_version = match current {
            Some(number) => self.store().get_model_version(name, number).await.ok(),
            None => None,
        };
        let champion_metrics = match &champion_version {
            Some(version) => Some(self.version_metrics(version).await?),
            None => None,
        };
        let approvals = self.store().approvals(name, candidate.number(), Some(alias)).await?;
        let facts = PromotionFacts {
            candidate_version: &candidate.version,
            candidate_metrics: self.version_metrics(candidate).await?,
            candidate_tags: candidate.tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect(),
            champion: champion_version.as_ref().zip(champion_metrics).map(|(v, m)| (v.version.as_str(), m)),
            approvals: &approvals,
        };
        let violations = policy.check(&facts);
        if violations.is_empty() {
            return Ok(());
        }
        Err(TrackingError::PolicyViolation(format!(
            "Promotion policy of alias '{alias}' on model '{name}' refuses version {}: {}",
            candidate.version,
            violations.iter().map(|v| v.0.as_str()).collect::<Vec<_>>().join("; ")
        )))
    }
}
