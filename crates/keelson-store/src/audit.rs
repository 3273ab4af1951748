//! SQL for the audit log: an append-only, hash-chained record of every mutating call.
//!
//! Each record's hash is SHA-256 over the previous record's hash and the record's own fields
//! (serialised as one JSON array, so no field can bleed into the next). Appends hold the write
//! lock (SQLite) or a transaction-scoped advisory lock (PostgreSQL), so the chain is one line
//! however many replicas write it; sequence numbers are contiguous from 1, so a deleted row shows
//! as a gap and an edited one as a hash that no longer matches.

use crate::backend::{Backend, Store};
use crate::error::StoreError;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The hash before the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Names the audit chain's lock among PostgreSQL advisory locks.
const PG_AUDIT_LOCK: i64 = 0x0061_7564_6974;

/// What one mutating call did, as the HTTP layer saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub principal: String,
    pub workspace: String,
    /// Method and route template: `POST /api/v1/endpoints/{endpoint}/rollback`.
    pub action: String,
    /// The concrete path the call named: `/api/v1/endpoints/fraud/rollback`.
    pub resource: String,
    pub status: i64,
    pub request_id: String,
    /// SHA-256 of the request (method, path and query, body): what was asked.
    pub request_digest: String,
    /// SHA-256 of the answer's body: what came of it.
    pub response_digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub time: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// Where the chain breaks, if it does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainCheck {
    pub records: i64,
    /// The first record that does not verify, with the reason.
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub after_seq: Option<i64>,
    pub principal: Option<String>,
    pub since: Option<i64>,
    pub limit: i64,
}

pub fn record_hash(prev_hash: &str, seq: i64, time: i64, event: &AuditEvent) -> String {
    let fields = serde_json::json!([
        prev_hash,
        seq,
        time,
        event.principal,
        event.workspace,
        event.action,
        event.resource,
        event.status,
        event.request_id,
        event.request_digest,
        event.response_digest,
    ]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

const COLUMNS: &str = "seq, event_time, principal, workspace, action, resource, status, request_id, \
                       request_digest, response_digest, prev_hash, hash";

fn record(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        time: row.try_get("event_time")?,
        event: AuditEvent {
            principal: row.try_get("principal")?,
            workspace: row.try_get("workspace")?,
            action: row.try_get("action")?,
            resource: row.try_get("resource")?,
            status: row.try_get::<i32, _>("status").map(i64::from).or_else(|_| row.try_get::<i64, _>("status"))?,
            request_id: row.try_get("request_id")?,
            request_digest: row.try_get("request_digest")?,
            response_digest: row.try_get("response_digest")?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// Appends events in order, in one transaction (callers batch concurrent requests into one
    /// commit). Returns the records as written.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_AUDIT_LOCK).execute(&mut *tx).await?;
        }
        let last =
            sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *tx).await?;
        let (mut seq, mut prev_hash) = match last {
            Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?),
            None => (0, GENESIS_HASH.to_string()),
        };
        let time = self.now();
        let mut written = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let hash = record_hash(&prev_hash, seq, time, event);
            sqlx::query(&format!(
                "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(seq)
            .bind(time)
            .bind(&event.principal)
            .bind(&event.workspace)
            .bind(&event.action)
            .bind(&event.resource)
            .bind(event.status as i32)
            .bind(&event.request_id)
            .bind(&event.request_digest)
            .bind(&event.response_digest)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            written.push(AuditRecord { seq, time, event: event.clone(), prev_hash, hash: hash.clone() });
            prev_hash = hash;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Records in sequence order, filtered.
    pub async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 AND ($2 = '' OR principal = $2) AND event_time >= $3 \
             ORDER BY seq LIMIT $4"
        ))
        .bind(query.after_seq.unwrap_or(0))
        .bind(query.principal.clone().unwrap_or_default())
        .bind(query.since.unwrap_or(i64::MIN))
        .bind(query.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Walks the whole chain in pages and reports the first record that does not verify: a gap
    /// in the sequence (a deleted row), a `prev_hash` that is not the previous record's hash, or
    /// a hash that does not match the record's fields (an edited row).
    pub async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
        const PAGE: i64 = 5_000;
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut records = 0;
        loop {
            let page = self
                .audit_records(&AuditQuery { after_seq: Some(expected_seq - 1), limit: PAGE, ..Default::default() })
                .await?;
            let full = page.len() as i64 == PAGE;
            for record in page {
                let broken = |reason: String| ChainCheck { records, broken_at: Some(record.seq), reason: Some(reason) };
                if record.seq != expected_seq {
                    return Ok(ChainCheck {
                        records,
                        broken_at: Some(expected_seq),
                        reason: Some(format!("record {expected_seq} is missing (the next is {})", record.seq)),
                    });
                }
                if record.prev_hash != prev_hash {
                    return Ok(broken("its prev_hash is not the previous record's hash".to_string()));
                }
                if record_hash(&record.prev_hash, record.seq, record.time, &record.event) != record.hash {
                    return Ok(broken("its fields do not match its hash (the record was changed)".to_string()));
                }
                records += 1;
                expected_seq += 1;
                prev_hash = record.hash;
            }
            if !full {
                return Ok(ChainCheck { records, broken_at: None, reason: None });
            }
        }
    }
}
