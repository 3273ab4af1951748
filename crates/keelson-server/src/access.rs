//! Per-resource permissions, as MLflow grants them: READ, USE, EDIT, MANAGE or NO_PERMISSIONS on
//! one experiment, registered model or prompt, or on every one of a type (`*`).
//!
//! A principal's workspace role is its permission on every resource without a grant (viewer:
//! READ, editor: EDIT, admin: MANAGE, and admins cannot be restricted). A grant on the resource,
//! else on `*` of its type, replaces that: it may lower it (NO_PERMISSIONS hides an experiment
//! from an editor) or raise it (a viewer with EDIT on one experiment logs runs there). Runs,
//! traces, logged models and artifacts follow their experiment; model versions and aliases their
//! registered model. Whoever creates an experiment or registered model gets MANAGE on it, so an
//! editor deletes what they made and nothing else (EDIT does not delete, as in MLflow).
//!
//! One middleware enforces it for every route in [`rule`]'s table, after routing and before the
//! route's role check: a call that only a grant allows is marked [`GrantedByResource`] for
//! `auth::authorize`. Principals whose grants cannot change the answer pass without the request
//! being read (the common case costs a map lookup).

use crate::app::AppState;
use crate::error::{ApiError, ErrorCode};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keelson_core::auth::{Principal, Role};
use keelson_store::grants::{ExperimentChild, ResourceGrant};
use keelson_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// MLflow's permission levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    NoPermissions,
    Read,
    Use,
    Edit,
    Manage,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "NO_PERMISSIONS" => Level::NoPermissions,
            "READ" => Level::Read,
            "USE" => Level::Use,
            "EDIT" => Level::Edit,
            "MANAGE" => Level::Manage,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::NoPermissions => "NO_PERMISSIONS",
            Level::Read => "READ",
            Level::Use => "USE",
            Level::Edit => "EDIT",
            Level::Manage => "MANAGE",
        }
    }

    /// The level a workspace role gives on resources without a grant.
    pub fn of_role(role: Role) -> Level {
        match role {
            Role::Viewer => Level::Read,
            Role::Editor => Level::Edit,
            Role::Admin => Level::Manage,
        }
    }

    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Read => self >= Level::Read,
            Need::Use => self >= Level::Use,
            Need::Update => self >= Level::Edit,
            Need::Delete | Need::Manage => self == Level::Manage,
        }
    }
}

/// What a call does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Use,
    Update,
    Delete,
    Manage,
}

/// The resource types grants name.
pub const RESOURCE_TYPES: [&str; 3] = ["experiment", "registered_model", "prompt"];

/// Set by the middleware when a grant, not the role, allows the call.
#[derive(Debug, Clone, Copy)]
pub struct GrantedByResource;

/// How a route names its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Locate {
    /// `experiment_id` in the message.
    Experiment,
    /// Every id in `experiment_ids`.
    Experiments,
    /// `experiment_name`.
    ExperimentName,
    /// `run_id` (or `run_uuid`).
    Run,
    /// Every id in `run_ids`.
    Runs,
    /// The `trace_id` path segment, else `request_id`/`trace_id` in the message.
    Trace,
    /// The `model_id` path segment.
    LoggedModel,
    /// The experiment a new trace names (`trace.trace_info.trace_location.mlflow_experiment`,
    /// `0` when none, as the handler reads it).
    TraceStart,
    /// The first segment of the artifact path (path or `path` query): an experiment id.
    ArtifactPath,
    /// `name` in the message (or the `name` path segment): a registered model or prompt.
    Model,
}

/// What the middleware does for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Check(Locate, Need),
    /// Creates an experiment or registered model: its creator gets MANAGE on it.
    CreateExperiment,
    CreateModel,
    /// Lists: entries the caller may not read are left out of the answer.
    FilterExperiments,
    FilterModels(&'static str),
    /// Renames or deletes a registered model: its grants follow the name (or go).
    RenameModel,
    DeleteModel,
}

/// The rule for a route template, or `None` for routes without per-resource permissions.
fn rule(method: &Method, template: &str) -> Option<Rule> {
    use Locate::*;
    use Need::*;
    let rpc = template
        .strip_prefix("/api/2.0/mlflow")
        .or_else(|| template.strip_prefix("/ajax-api/2.0/mlflow"))
        .filter(|rest| rest.starts_with('/'));
    if let Some(suffix) = rpc {
        return Some(match suffix {
            "/experiments/create" => Rule::CreateExperiment,
            "/experiments/get" => Rule::Check(Experiment, Read),
            "/experiments/get-by-name" => Rule::Check(ExperimentName, Read),
            "/experiments/search" => Rule::FilterExperiments,
            "/experiments/update" | "/experiments/set-experiment-tag" | "/experiments/delete-experiment-tag" => {
                Rule::Check(Experiment, Update)
            }
            "/experiments/delete" | "/experiments/restore" => Rule::Check(Experiment, Delete),
            "/runs/create" => Rule::Check(Experiment, Update),
            "/runs/get" | "/metrics/get-history" => Rule::Check(Run, Read),
            "/runs/update"
            | "/runs/log-metric"
            | "/runs/log-parameter"
            | "/runs/set-tag"
            | "/runs/delete-tag"
            | "/runs/log-batch"
            | "/runs/log-inputs"
            | "/runs/outputs" => Rule::Check(Run, Update),
            "/runs/delete" | "/runs/restore" => Rule::Check(Run, Delete),
            "/runs/search" => Rule::Check(Experiments, Read),
            "/metrics/get-history-bulk-interval" => Rule::Check(Runs, Read),
            "/logged-models" => Rule::Check(Experiment, Update),
            "/logged-models/search" => Rule::Check(Experiments, Read),
            "/logged-models/{model_id}" if method == Method::GET => Rule::Check(LoggedModel, Read),
            "/logged-models/{model_id}" if method == Method::DELETE => Rule::Check(LoggedModel, Delete),
            "/logged-models/{model_id}"
            | "/logged-models/{model_id}/tags"
            | "/logged-models/{model_id}/tags/{tag_key}"
            | "/logged-models/{model_id}/params" => Rule::Check(LoggedModel, Update),
            "/registered-models/create" => Rule::CreateModel,
            "/registered-models/get"
            | "/registered-models/get-latest-versions"
            | "/model-versions/get"
            | "/model-versions/get-download-uri" => Rule::Check(Model, Read),
            "/registered-models/alias" if method == Method::GET => Rule::Check(Model, Read),
            "/registered-models/search" => Rule::FilterModels("registered_models"),
            "/model-versions/search" => Rule::FilterModels("model_versions"),
            "/registered-models/rename" => Rule::RenameModel,
            "/registered-models/delete" => Rule::DeleteModel,
            "/registered-models/update"
            | "/registered-models/set-tag"
            | "/registered-models/delete-tag"
            | "/registered-models/alias"
            | "/model-versions/create"
            | "/model-versions/update"
            | "/model-versions/transition-stage"
            | "/model-versions/set-tag"
            | "/model-versions/delete-tag" => Rule::Check(Model, Update),
            "/model-versions/delete" => Rule::Check(Model, Delete),
            _ => return None,
        });
    }
    if let Some(suffix) =
        template.strip_prefix("/api/3.0/mlflow/traces").or_else(|| template.strip_prefix("/ajax-api/3.0/mlflow/traces"))
    {
        return Some(match (method.as_str(), suffix) {
            ("POST", "") => Rule::Check(TraceStart, Update),
            (_, "/search") => Rule::Check(Experiments, Read),
            (_, "/delete-traces") => Rule::Check(Experiment, Delete),
            ("GET", "/{trace_id}") => Rule::Check(Trace, Read),
            (_, "/{trace_id}/tags") => Rule::Check(Trace, Update),
            _ => return None,
        });
    }
    if let Some(suffix) = template
        .strip_prefix("/api/2.0/mlflow-artifacts")
        .or_else(|| template.strip_prefix("/ajax-api/2.0/mlflow-artifacts"))
    {
        let need = match *method {
            Method::GET => Read,
            Method::DELETE => Delete,
            _ => Update,
        };
        return suffix.starts_with('/').then_some(Rule::Check(ArtifactPath, need));
    }
    if let Some(rest) = template.strip_prefix("/api/v1/models/{name}") {
        // Promotion policies stay with the workspace's admins (the role check).
        if rest.ends_with("/policy") && method != Method::GET {
            return None;
        }
        let need = if method == Method::GET { Read } else { Update };
        return Some(Rule::Check(Model, need));
    }
    None
}

/// What a route needs on the resource it names, for routes with per-resource permissions that
/// check one (the authorisation matrix test reads it).
pub fn route_need(method: &Method, template: &str) -> Option<Need> {
    match rule(method, template)? {
        Rule::Check(_, need) => Some(need),
        Rule::RenameModel => Some(Need::Manage),
        Rule::DeleteModel => Some(Need::Delete),
        _ => None,
    }
}

/// Whether a route creates a resource (its maker gets MANAGE) or lists resources (the answer is
/// filtered), the rules that name no single resource.
pub fn route_filters_or_creates(method: &Method, template: &str) -> bool {
    matches!(
        rule(method, template),
        Some(Rule::CreateExperiment | Rule::CreateModel | Rule::FilterExperiments | Rule::FilterModels(_))
    )
}

/// A principal's grants in one workspace, cached like credentials.
#[derive(Clone)]
pub struct AccessControl {
    store: Store,
    grants: Arc<Mutex<HashMap<String, CachedGrants>>>,
}

/// A principal's grants as read at a time.
type CachedGrants = (Arc<Vec<Grant>>, Instant);

#[derive(Debug, Clone)]
struct Grant {
    resource_type: &'static str,
    resource_id: String,
    level: Level,
}

const GRANTS_TTL: Duration = Duration::from_secs(30);
const MAX_CACHED: usize = 10_000;

/// What the resource a call names resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anchor {
    Experiment(String),
    Model(String),
}

impl Anchor {
    /// An experiment by its id as the store reads it: `07` and ` 7` are experiment 7, so a
    /// grant on `7` must apply to them too.
    fn experiment(id: &str) -> Anchor {
        Anchor::Experiment(canonical_experiment_id(id))
    }
}

/// An experiment id in the one spelling grants are kept in.
pub fn canonical_experiment_id(id: &str) -> String {
    id.trim().parse::<i64>().map_or_else(|_| id.to_string(), |n| n.to_string())
}

impl AccessControl {
    pub fn new(store: Store) -> AccessControl {
        AccessControl { store, grants: Arc::default() }
    }

    pub fn forget(&self) {
        self.grants.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    async fn grants_of(&self, principal: &str) -> Result<Arc<Vec<Grant>>, ApiError> {
        if let Some((grants, at)) = self.grants.lock().unwrap_or_else(|p| p.into_inner()).get(principal) {
            if at.elapsed() < GRANTS_TTL {
                return Ok(grants.clone());
            }
        }
        let stored = self.store.resource_grants_of(principal).await?;
        let grants: Arc<Vec<Grant>> = Arc::new(
            stored
                .into_iter()
                .filter_map(|g| {
                    Some(Grant {
                        resource_type: RESOURCE_TYPES.into_iter().find(|t| *t == g.resource_type)?,
                        resource_id: g.resource_id,
                        level: Level::parse(&g.permission)?,
                    })
                })
                .collect(),
        );
        let mut cache = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(principal.to_string(), (grants.clone(), Instant::now()));
        Ok(grants)
    }

    /// The permission `principal` (with workspace role `role`) has on `anchor`.
    async fn level_on(&self, principal: &str, role: Role, anchor: &Anchor) -> Result<Level, ApiError> {
        if role == Role::Admin {
            return Ok(Level::Manage);
        }
        let grants = self.grants_of(principal).await?;
        let find = |types: &[&str], id: &str| {
            grants.iter().filter(|g| types.contains(&g.resource_type) && g.resource_id == id).map(|g| g.level).max()
        };
        let level = match anchor {
            Anchor::Experiment(id) => find(&["experiment"], id).or_else(|| find(&["experiment"], "*")),
            Anchor::Model(name) => match find(&["registered_model", "prompt"], name) {
                Some(level) => Some(level),
                None if grants.iter().any(|g| g.resource_type != "experiment" && g.resource_id == "*") => {
                    // A wildcard applies by type: prompts are registered models tagged so.
                    let prompt = self.store.get_registered_model(name).await.is_ok_and(|m| m.is_prompt());
                    find(&[if prompt { "prompt" } else { "registered_model" }], "*")
                }
                None => None,
            },
        };
        Ok(level.unwrap_or(Level::of_role(role)))
    }

    /// Public for the permission routes: the level as a request would see it.
    pub async fn effective(
        &self,
        principal: &str,
        role: Option<Role>,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Level, ApiError> {
        let Some(role) = role else { return Ok(Level::NoPermissions) };
        let anchor = if resource_type == "experiment" {
            Anchor::experiment(resource_id)
        } else {
            Anchor::Model(resource_id.to_string())
        };
        self.level_on(principal, role, &anchor).await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn give_creator(&self, principal: &str, resource_type: &str, resource_id: &str) -> Result<(), ApiError> {
        let grant = ResourceGrant {
            principal: principal.to_string(),
            resource_type: resource_type.to_string(),
            resource_id: resource_id.to_string(),
            permission: Level::Manage.as_str().to_string(),
            granted: self.store.now(),
            granted_by: principal.to_string(),
        };
        self.store.put_resource_grant(&grant, true).await?;
        self.forget();
        Ok(())
    }
}

fn need_name(need: Need) -> &'static str {
    match need {
        Need::Read => "READ",
        Need::Use => "USE",
        Need::Update => "EDIT",
        Need::Delete | Need::Manage => "MANAGE",
    }
}

fn denied(principal: &str, need: Need, anchor: Option<(&Anchor, Level)>) -> ApiError {
    let message = match anchor {
        Some((Anchor::Experiment(id), level)) => format!(
            "permission denied: `{principal}` has {} on experiment `{}`, and this needs {}",
            level.as_str(),
            id.escape_debug(),
            need_name(need)
        ),
        Some((Anchor::Model(name), level)) => format!(
            "permission denied: `{principal}` has {} on registered model `{}`, and this needs {}",
            level.as_str(),
            name.escape_debug(),
            need_name(need)
        ),
        None => format!("permission denied: `{principal}` holds no grant that gives {} here", need_name(need)),
    };
    ApiError::new(ErrorCode::PermissionDenied, message)
}

/// The middleware (see the module's comment).
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match enforce_inner(&state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn enforce_inner(state: &AppState, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let found = request.extensions().get::<MatchedPath>().and_then(|path| rule(request.method(), path.as_str()));
    let Some(rule) = found else { return Ok(next.run(request).await) };
    let hooks = matches!(rule, Rule::RenameModel | Rule::DeleteModel);
    // Callers without a role are the role check's to refuse, as are hidden workspaces; admins
    // are not restricted (but a model they rename or delete takes its grants along), and
    // anonymous callers while authentication is off act as admins.
    let hidden = request.extensions().get::<crate::workspace::Hidden>().is_some();
    let caller = match request.extensions().get::<Principal>() {
        Some(user @ Principal::User { name, .. }) if !hidden => user.workspace_role().map(|role| (name.clone(), role)),
        Some(Principal::Anonymous) if !hidden && hooks => Some(("anonymous".to_string(), Role::Admin)),
        _ => None,
    };
    let (name, role) = match caller {
        Some((name, role)) if role != Role::Admin || hooks => (name, role),
        _ => return Ok(next.run(request).await),
    };
    let access = &state.access;
    let baseline = Level::of_role(role);
    match rule {
        Rule::CreateExperiment | Rule::CreateModel => {
            let response = next.run(request).await;
            if !response.status().is_success() {
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let created = if rule == Rule::CreateExperiment {
                answer["experiment_id"].as_str().map(|id| ("experiment", id.to_string()))
            } else {
                answer["registered_model"]["name"].as_str().map(|n| {
                    let prompt = answer["registered_model"]["tags"].as_array().is_some_and(|tags| {
                        tags.iter().any(|t| t["key"] == keelson_core::registry::PROMPT_TAG && t["value"] == "true")
                    });
                    (if prompt { "prompt" } else { "registered_model" }, n.to_string())
                })
            };
            if let Some((kind, id)) = created {
                access.give_creator(&name, kind, &id).await?;
            }
            return Ok(Response::from_parts(parts, Body::from(bytes)));
        }
        Rule::FilterExperiments | Rule::FilterModels(_) => {
            let grants = access.grants_of(&name).await?;
            let kinds: &[&str] =
                if rule == Rule::FilterExperiments { &["experiment"] } else { &["registered_model", "prompt"] };
            if !grants.iter().any(|g| kinds.contains(&g.resource_type) && !g.level.allows(Need::Read)) {
                return Ok(next.run(request).await);
            }
            let response = next.run(request).await;
            if !response.status().is_success() {
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let mut answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (field, key) = match rule {
                Rule::FilterModels(field) => (field, "name"),
                _ => ("experiments", "experiment_id"),
            };
            if let Some(items) = answer.get_mut(field).and_then(Value::as_array_mut) {
                let mut kept = Vec::with_capacity(items.len());
                for item in items.drain(..) {
                    let id = item[key].as_str().unwrap_or_default().to_string();
                    let anchor = if key == "name" { Anchor::Model(id) } else { Anchor::experiment(&id) };
                    if access.level_on(&name, role, &anchor).await?.allows(Need::Read) {
                        kept.push(item);
                    }
                }
                *items = kept;
            }
            let mut parts = parts;
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            return Ok(Response::from_parts(parts, Body::from(answer.to_string())));
        }
        _ => {}
    }
    let (locate, need) = match rule {
        Rule::Check(locate, need) => (locate, need),
        Rule::RenameModel => (Locate::Model, Need::Manage),
        Rule::DeleteModel => (Locate::Model, Need::Delete),
        _ => return Ok(next.run(request).await),
    };
    let grants = access.grants_of(&name).await?;
    let kinds: &[&str] = match locate {
        Locate::Model => &["registered_model", "prompt"],
        _ => &["experiment"],
    };
    let relevant: Vec<Level> = grants.iter().filter(|g| kinds.contains(&g.resource_type)).map(|g| g.level).collect();
    if !hooks && baseline.allows(need) && relevant.iter().all(|level| level.allows(need)) {
        return Ok(next.run(request).await);
    }
    if !baseline.allows(need) && !relevant.iter().any(|level| level.allows(need)) {
        return Err(denied(&name, need, None));
    }
    // The answer depends on which resource this is: read the request.
    let (request_again, message) = read_message(request, state.max_body_bytes).await?;
    request = request_again;
    let path = request.uri().path().to_string();
    let anchors = locate_anchors(access.store(), locate, &path, &message).await?;
    // Only a grant on the resource itself may allow more than the role: a call whose resource
    // cannot be found is held to the role.
    if anchors.is_empty() && !baseline.allows(need) {
        return Err(denied(&name, need, None));
    }
    for anchor in &anchors {
        let level = access.level_on(&name, role, anchor).await?;
        if !level.allows(need) {
            return Err(denied(&name, need, Some((anchor, level))));
        }
    }
    if !baseline.allows(need) {
        request.extensions_mut().insert(GrantedByResource);
    }
    let response = next.run(request).await;
    if hooks && response.status().is_success() {
        if let Some(Anchor::Model(old)) = anchors.first() {
            for kind in ["registered_model", "prompt"] {
                match rule {
                    Rule::RenameModel => {
                        if let Some(new) = message["new_name"].as_str() {
                            access.store().rename_resource_grants(kind, old, new).await?;
                        }
                    }
                    _ => {
                        access.store().delete_resource_grants_on(kind, old).await?;
                    }
                }
            }
            access.forget();
        }
    }
    Ok(response)
}

/// The request's message (query parameters, or the JSON body, which is put back), and the
/// request.
async fn read_message(request: Request, limit: usize) -> Result<(Request, Value), ApiError> {
    let mut message = serde_json::Map::new();
    if let Some(query) = request.uri().query() {
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = Value::String(value.into_owned());
            match message.get_mut(key.as_ref()) {
                Some(Value::Array(items)) => items.push(value),
                Some(existing) => *existing = Value::Array(vec![existing.clone(), value]),
                None => {
                    message.insert(key.into_owned(), value);
                }
            }
        }
    }
    let streaming = request.method() == Method::PUT;
    if streaming || matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok((request, Value::Object(message)));
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "request body is larger than the server's limit"))?;
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&bytes) {
        message.extend(fields);
    }
    Ok((Request::from_parts(parts, Body::from(bytes)), Value::Object(message)))
}

fn field<'a>(message: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| message.get(*name).and_then(Value::as_str)).filter(|v| !v.is_empty())
}

/// The resources a call names. A resource that does not exist yields nothing to check: the
/// handler answers its absence.
async fn locate_anchors(store: &Store, locate: Locate, path: &str, message: &Value) -> Result<Vec<Anchor>, ApiError> {
    let segment_after = |marker: &str| path.split('/').skip_while(|s| *s != marker).nth(1).map(percent_decode);
    let experiment = |id: Option<String>| id.map(|id| Anchor::experiment(&id)).into_iter().collect::<Vec<_>>();
    Ok(match locate {
        Locate::Experiment => experiment(field(message, &["experiment_id"]).map(str::to_string)),
        Locate::Experiments => {
            let mut anchors: Vec<Anchor> = match message.get("experiment_ids") {
                Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).map(Anchor::experiment).collect(),
                Some(Value::String(id)) => vec![Anchor::experiment(id)],
                _ => Vec::new(),
            };
            // Trace searches may name experiments as locations instead.
            if let Some(Value::Array(locations)) = message.get("locations") {
                anchors.extend(
                    locations
                        .iter()
                        .filter_map(|l| l["mlflow_experiment"]["experiment_id"].as_str())
                        .map(Anchor::experiment),
                );
            }
            anchors
        }
        Locate::TraceStart => {
            let location = &message["trace"]["trace_info"]["trace_location"]["mlflow_experiment"]["experiment_id"];
            vec![Anchor::experiment(location.as_str().unwrap_or("0"))]
        }
        Locate::ExperimentName => match field(message, &["experiment_name"]) {
            Some(name) => experiment(store.experiment_of(ExperimentChild::ByName, name).await?),
            None => Vec::new(),
        },
        Locate::Run => match field(message, &["run_id", "run_uuid"]) {
            Some(run) => experiment(store.experiment_of(ExperimentChild::Run, run).await?),
            None => Vec::new(),
        },
        Locate::Runs => {
            let ids: Vec<String> = match message.get("run_ids") {
                Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                Some(Value::String(id)) => vec![id.clone()],
                _ => Vec::new(),
            };
            let mut anchors = Vec::with_capacity(ids.len());
            for run in ids {
                anchors.extend(experiment(store.experiment_of(ExperimentChild::Run, &run).await?));
            }
            anchors
        }
        Locate::Trace => {
            let id = segment_after("traces").filter(|s| s != "search" && s != "delete-traces");
            match id.or_else(|| field(message, &["trace_id", "request_id"]).map(str::to_string)) {
                Some(trace) => experiment(store.experiment_of(ExperimentChild::Trace, &trace).await?),
                None => Vec::new(),
            }
        }
        Locate::LoggedModel => match segment_after("logged-models") {
            Some(model) => experiment(store.experiment_of(ExperimentChild::LoggedModel, &model).await?),
            None => Vec::new(),
        },
        Locate::ArtifactPath => {
            let from_path = path
                .split_once("/artifacts/")
                .or_else(|| path.split_once("/mpu/create/"))
                .or_else(|| path.split_once("/mpu/complete/"))
                .or_else(|| path.split_once("/mpu/abort/"))
                .map(|(_, rest)| rest.to_string());
            let artifact = from_path.or_else(|| field(message, &["path"]).map(str::to_string)).unwrap_or_default();
            let first = artifact.trim_start_matches('/').split('/').next().unwrap_or_default();
            experiment(Some(percent_decode(first)).filter(|s| !s.is_empty()))
        }
        Locate::Model => {
            let name = segment_after("models").filter(|_| path.starts_with("/api/v1/models/"));
            match name.or_else(|| field(message, &["name"]).map(str::to_string)) {
                Some(name) => vec![Anchor::Model(name)],
                None => Vec::new(),
            }
        }
    })
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}
