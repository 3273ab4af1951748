//! The job queue: enqueue, claim under a lease, heartbeat, complete, fail with backoff,
//! dead-letter, cancel and retry. Claims on PostgreSQL use `FOR UPDATE SKIP LOCKED`, so any number
//! of workers on any machines share one queue without running a job twice.

use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::jobs::{Job, JobStatus, NewJob, RetryPolicy};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

const JOB_COLUMNS: &str = "id, kind, payload, status, priority, attempts, max_attempts, run_at, lease_owner, \
     lease_expires_at, last_error, result, created_at, updated_at, finished_at";

/// Longest error text kept per attempt; handlers can produce huge messages.
const MAX_ERROR_CHARS: usize = 4_000;
/// Largest page a listing returns.
pub const MAX_PAGE_SIZE: i64 = 1_000;

/// A job claimed by a worker, with the token that proves it still holds the lease.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job: Job,
    pub lease_token: String,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    pub limit: i64,
    /// Opaque token from a previous page.
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobAttempt {
    pub attempt: i64,
    pub worker: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// How a failed attempt should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Retry with backoff while attempts remain, then dead-letter.
    Retry,
    /// Dead-letter now: retrying cannot help (bad payload, unknown kind).
    Permanent,
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

fn job_from_row(row: &AnyRow) -> Result<Job, StoreError> {
    let status: String = row.try_get("status")?;
    let payload: String = row.try_get("payload")?;
    let result: Option<String> = row.try_get("result")?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("job {what}: {e}"));
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt("payload", &e))?,
        status: status.parse().map_err(|e| corrupt("status", &e))?,
        priority: i32::try_from(row.try_get::<i64, _>("priority")?).unwrap_or_default(),
        attempts: i32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or_default(),
        max_attempts: i32::try_from(row.try_get::<i64, _>("max_attempts")?).unwrap_or_default(),
        run_at: row.try_get("run_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        last_error: row.try_get("last_error")?,
        result: result.map(|r| serde_json::from_str(&r)).transpose().map_err(|e| corrupt("result", &e))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Store {
    /// Adds a job; it is durable when this returns.
    pub async fn enqueue_job(&self, new: &NewJob, retry: &RetryPolicy) -> Result<Job, StoreError> {
        new.validate().map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        let now = self.now();
        let id = uuid::Uuid::now_v7().to_string();
        let payload = serde_json::to_string(&new.payload).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        let sql = format!(
            "INSERT INTO jobs (id, kind, payload, status, priority, attempts, max_attempts, run_at, created_at, \
             updated_at) VALUES ($1, $2, $3, 'queued', $4, 0, $5, $6, $7, $7) RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&id)
            .bind(&new.kind)
            .bind(payload)
            .bind(i64::from(new.priority))
            .bind(i64::from(new.max_attempts.unwrap_or(retry.default_max_attempts)))
            .bind(now + new.delay_ms.unwrap_or(0))
            .bind(now)
            .fetch_one(&self.writer)
            .await?;
        job_from_row(&row)
    }

    pub async fn get_job(&self, id: &str) -> Result<Job, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.reader).await?;
        row.as_ref().map(job_from_row).transpose()?.ok_or_else(|| StoreError::JobNotFound(id.to_string()))
    }

    /// Newest first, paginated by an opaque token.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<JobPage, StoreError> {
        let limit = if filter.limit <= 0 { 100 } else { filter.limit };
        if limit > MAX_PAGE_SIZE {
            return Err(StoreError::InvalidArgument(format!(
                "limit {limit} is too large; the maximum is {MAX_PAGE_SIZE}"
            )));
        }
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(status) = filter.status {
            binds.push(status.as_str().to_string());
            conditions.push(format!("status = ${}", binds.len()));
        }
        if let Some(kind) = &filter.kind {
            binds.push(kind.clone());
            conditions.push(format!("kind = ${}", binds.len()));
        }
        if let Some(token) = &filter.page_token {
            let after = decode_page_token(token)?;
            binds.push(after);
            conditions.push(format!("id < ${}", binds.len()));
        }
        let where_clause =
            if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs{where_clause} ORDER BY id DESC LIMIT ${}", binds.len() + 1);
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query.bind(limit + 1).fetch_all(&self.reader).await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = if jobs.len() as i64 > limit {
            jobs.truncate(limit as usize);
            jobs.last().map(|job| encode_page_token(&job.id))
        } else {
            None
        };
        Ok(JobPage { jobs, next_page_token })
    }

    /// Jobs per status, for metrics.
    pub async fn count_jobs_by_status(&self) -> Result<Vec<(JobStatus, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetch_all(&self.reader).await?;
        let mut counts = Vec::new();
        for row in rows {
            let status: String = row.try_get("status")?;
            let status = status.parse().map_err(|e| StoreError::Corrupt(format!("job status: {e}")))?;
            counts.push((status, row.try_get::<i64, _>("n")?));
        }
        Ok(counts)
    }

    pub async fn list_job_attempts(&self, id: &str) -> Result<Vec<JobAttempt>, StoreError> {
        self.get_job(id).await?;
        let rows = sqlx::query(
            "SELECT attempt, worker, started_at, finished_at, outcome, error FROM job_attempts \
             WHERE job_id = $1 ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(JobAttempt {
                    attempt: row.try_get("attempt")?,
                    worker: row.try_get("worker")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    outcome: row.try_get("outcome")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
    }

    /// Returns jobs whose lease expired to the queue (or to the dead-letter state when their
    /// attempts are spent). Runs before every claim; returns how many were recovered.
    pub async fn recover_expired_leases(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let rows = sqlx::query(
            "UPDATE jobs SET \
               status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
               finished_at = CASE WHEN attempts >= max_attempts THEN $1 ELSE NULL END, \
               last_error = 'lease expired: the worker stopped heartbeating', \
               run_at = $1, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE status = 'running' AND lease_expires_at < $1 \
             RETURNING id, attempts",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            sqlx::query(
                "UPDATE job_attempts SET finished_at = $1, outcome = 'lease_expired' \
                 WHERE job_id = $2 AND attempt = $3 AND finished_at IS NULL",
            )
            .bind(now)
            .bind(row.try_get::<String, _>("id")?)
            .bind(row.try_get::<i64, _>("attempts")?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if !rows.is_empty() {
            tracing::warn!(count = rows.len(), "recovered jobs with expired leases");
        }
        Ok(rows.len() as u64)
    }

    /// Claims the most urgent due job of one of `kinds`, leasing it to `worker` for `lease_ms`.
    pub async fn claim_job(
        &self,
        worker: &str,
        kinds: &[String],
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        self.recover_expired_leases().await?;
        let now = self.now();
        let token = uuid::Uuid::new_v4().to_string();
        let kind_params: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 5)).collect();
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, lease_token = $2, \
               lease_expires_at = $3, updated_at = $4 \
             WHERE status = 'queued' AND id = (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $4 \
               AND kind IN ({}) ORDER BY priority DESC, run_at, id LIMIT 1{}) \
             RETURNING {JOB_COLUMNS}",
            kind_params.join(", "),
            self.backend.skip_locked()
        );
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let mut query = sqlx::query(&sql).bind(worker).bind(&token).bind(now + lease_ms).bind(now);
        for kind in kinds {
            query = query.bind(kind);
        }
        let Some(row) = query.fetch_optional(&mut *tx).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let job = job_from_row(&row)?;
        sqlx::query("INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES ($1, $2, $3, $4)")
            .bind(&job.id)
            .bind(i64::from(job.attempts))
            .bind(worker)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(ClaimedJob { job, lease_token: token }))
    }

    /// Extends a lease. Fails with [`StoreError::LeaseLost`] when the job is no longer ours.
    pub async fn heartbeat_job(&self, claimed: &ClaimedJob, lease_ms: i64) -> Result<(), StoreError> {
        let now = self.now();
        let updated = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1, updated_at = $2 \
             WHERE id = $3 AND lease_token = $4 AND status = 'running'",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(&claimed.job.id)
        .bind(&claimed.lease_token)
        .execute(&self.writer)
        .await?;
        if updated.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(claimed.job.id.clone()))
        }
    }

    /// Records success. A worker whose lease was lost gets [`StoreError::LeaseLost`] and its
    /// result is discarded: the job belongs to whoever reclaimed it.
    pub async fn complete_job(&self, claimed: &ClaimedJob, result: &serde_json::Value) -> Result<Job, StoreError> {
        let now = self.now();
        let result = serde_json::to_string(result).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let sql = format!(
            "UPDATE jobs SET status = 'succeeded', result = $1, finished_at = $2, updated_at = $2, \
               lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             WHERE id = $3 AND lease_token = $4 AND status = 'running' RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(result)
            .bind(now)
            .bind(&claimed.job.id)
            .bind(&claimed.lease_token)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::LeaseLost(claimed.job.id.clone()));
        };
        let job = job_from_row(&row)?;
        finish_attempt(&mut tx, &job.id, job.attempts, now, "succeeded", None).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Records a failed attempt: back to the queue after a backoff, or dead-lettered when the
    /// attempts are spent or the failure is permanent.
    pub async fn fail_job(
        &self,
        claimed: &ClaimedJob,
        error: &str,
        mode: FailureMode,
        retry: &RetryPolicy,
    ) -> Result<Job, StoreError> {
        let now = self.now();
        let attempts = claimed.job.attempts;
        let exhausted = mode == FailureMode::Permanent || attempts >= claimed.job.max_attempts;
        let base_delay = retry.backoff_ms(attempts);
        // Up to 20% jitter spreads retries of jobs that failed together.
        let jitter = if base_delay > 0 { fastrand::i64(0..=base_delay / 5) } else { 0 };
        let error = truncate(error);
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let sql = format!(
            "UPDATE jobs SET status = $1, run_at = $2, last_error = $3, finished_at = $4, updated_at = $5, \
               lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             WHERE id = $6 AND lease_token = $7 AND status = 'running' RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(if exhausted { JobStatus::Dead.as_str() } else { JobStatus::Queued.as_str() })
            .bind(if exhausted { now } else { now + base_delay + jitter })
            .bind(&error)
            .bind(if exhausted { Some(now) } else { None })
            .bind(now)
            .bind(&claimed.job.id)
            .bind(&claimed.lease_token)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::LeaseLost(claimed.job.id.clone()));
        };
        let job = job_from_row(&row)?;
        finish_attempt(&mut tx, &job.id, job.attempts, now, "failed", Some(&error)).await?;
        tx.commit().await?;
        if exhausted {
            tracing::warn!(job = %job.id, kind = %job.kind, attempts, "job dead-lettered");
        }
        Ok(job)
    }

    /// Gives a claimed job back without spending an attempt (worker shutting down).
    pub async fn release_job(&self, claimed: &ClaimedJob) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let updated = sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at = $1, updated_at = $1, \
               lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             WHERE id = $2 AND lease_token = $3 AND status = 'running'",
        )
        .bind(now)
        .bind(&claimed.job.id)
        .bind(&claimed.lease_token)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 1 {
            sqlx::query("DELETE FROM job_attempts WHERE job_id = $1 AND attempt = $2")
                .bind(&claimed.job.id)
                .bind(i64::from(claimed.job.attempts))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cancels a job that has not started.
    pub async fn cancel_job(&self, id: &str) -> Result<Job, StoreError> {
        let now = self.now();
        let sql = format!(
            "UPDATE jobs SET status = 'cancelled', finished_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'queued' RETURNING {JOB_COLUMNS}"
        );
        match sqlx::query(&sql).bind(now).bind(id).fetch_optional(&self.writer).await? {
            Some(row) => job_from_row(&row),
            None => {
                let job = self.get_job(id).await?;
                Err(StoreError::Conflict(format!(
                    "job `{id}` is {} and cannot be cancelled; only queued jobs can",
                    job.status
                )))
            }
        }
    }

    /// Puts a dead or cancelled job back in the queue with a renewed attempt budget. Earlier
    /// attempts stay in the attempt log.
    pub async fn retry_job(&self, id: &str) -> Result<Job, StoreError> {
        let now = self.now();
        let sql = format!(
            "UPDATE jobs SET status = 'queued', max_attempts = attempts + max_attempts, run_at = $1, \
               finished_at = NULL, updated_at = $1 \
             WHERE id = $2 AND status IN ('dead', 'cancelled') RETURNING {JOB_COLUMNS}"
        );
        match sqlx::query(&sql).bind(now).bind(id).fetch_optional(&self.writer).await? {
            Some(row) => job_from_row(&row),
            None => {
                let job = self.get_job(id).await?;
                Err(StoreError::Conflict(format!(
                    "job `{id}` is {} and cannot be retried; only dead or cancelled jobs can",
                    job.status
                )))
            }
        }
    }
}

async fn finish_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job_id: &str,
    attempt: i32,
    now: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE job_attempts SET finished_at = $1, outcome = $2, error = $3 WHERE job_id = $4 AND attempt = $5",
    )
    .bind(now)
    .bind(outcome)
    .bind(error)
    .bind(job_id)
    .bind(i64::from(attempt))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn encode_page_token(last_id: &str) -> String {
    format!("j1.{last_id}")
}

fn decode_page_token(token: &str) -> Result<String, StoreError> {
    token
        .strip_prefix("j1.")
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .map(str::to_string)
        .ok_or_else(|| StoreError::InvalidArgument(format!("invalid page_token `{token}`")))
}
