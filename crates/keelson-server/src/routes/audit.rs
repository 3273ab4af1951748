//! `/api/v1/audit`: read, export and verify the audit log (admins only).

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_store::audit::AuditQuery;
use serde::Deserialize;
use serde_json::{json, Value};

/// Records one page holds at most.
const MAX_PAGE: i64 = 1_000;

pub fn routes(state: AppState) -> Routes {
    let admin = Permission::admin(ResourceKind::Audit);
    Routes::new(state).get("/api/v1/audit", admin, list).get("/api/v1/audit/export", admin, export).get(
        "/api/v1/audit/verify",
        admin,
        verify,
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Records after this sequence number (for paging: the last `seq` seen).
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    principal: Option<String>,
    /// Records at or after this time (milliseconds since the epoch).
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

impl ListQuery {
    fn query(&self) -> Result<AuditQuery, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::invalid(format!("limit must be 1 to {MAX_PAGE}; got {limit}")));
        }
        Ok(AuditQuery { after_seq: self.after, principal: self.principal.clone(), since: self.since, limit })
    }
}

async fn list(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Json<Value>, ApiError> {
    let records = state.system_store.audit_records(&query.query()?).await?;
    let next = records.last().map(|record| record.seq);
    Ok(Json(json!({ "records": records, "next_after": next })))
}

/// The log as JSON Lines, one record a line, in sequence order from `after` (whole log by
/// default, read in pages).
async fn export(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let mut page = query.query()?;
    page.limit = MAX_PAGE;
    let mut out = String::new();
    loop {
        let records = state.system_store.audit_records(&page).await?;
        for record in &records {
            out.push_str(&serde_json::to_string(record).map_err(|e| ApiError::invalid(e.to_string()))?);
            out.push('\n');
        }
        match records.last() {
            Some(last) if records.len() as i64 == MAX_PAGE => page.after_seq = Some(last.seq),
            _ => break,
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
}

async fn verify(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let check = state.system_store.verify_audit_chain().await?;
    Ok(Json(json!({ "valid": check.broken_at.is_none(), "check": check })))
}
