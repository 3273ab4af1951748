//! One conformance suite for every metadata backend. Each test body is written once against
//! `Store` and instantiated for SQLite and PostgreSQL; the PostgreSQL copies need
//! `KEELSON_TEST_DATABASE_URL` (scripts/test sets it and runs ignored tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keelson_core::clock::Clock;
use keelson_core::jobs::{JobStatus, NewJob, RetryPolicy};
use keelson_store::jobs::{FailureMode, JobFilter};
use keelson_store::worker::{HandlerRegistry, JobFailure, JobHandler, Worker, WorkerOptions};
use keelson_store::{Store, StoreError, StoreOptions, LATEST_SCHEMA_VERSION};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::TestDb;

both_backends!(
    migrations_are_recorded_and_idempotent,
    newer_schema_is_refused,
    ping_answers,
    enqueue_get_round_trip,
    invalid_jobs_write_nothing,
    listing_paginates_newest_first_with_filters,
    claim_respects_priority_delay_and_kinds,
    heartbeat_extends_and_detects_lost_lease,
    failures_back_off_then_dead_letter,
    permanent_failure_dead_letters_at_once,
    expired_lease_on_last_attempt_dead_letters,
    release_does_not_spend_an_attempt,
    cancel_and_retry_follow_the_state_machine,
    concurrent_claimers_never_share_a_job,
    two_workers_run_every_job_exactly_once,
    worker_dead_letters_a_job_that_always_fails,
    worker_retries_a_job_whose_lease_expired,
    counts_by_status,
);

fn retry() -> RetryPolicy {
    RetryPolicy { default_max_attempts: 3, backoff_base_ms: 1_000, backoff_max_ms: 60_000 }
}

fn noop(kind: &str) -> NewJob {
    NewJob::new(kind, json!({"n": 1}))
}

async fn migrations_are_recorded_and_idempotent(db: TestDb) {
    assert_eq!(db.store.schema_version().await.unwrap(), LATEST_SCHEMA_VERSION);
    let again = db.store.migrate().await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.from_version, LATEST_SCHEMA_VERSION);
}

async fn newer_schema_is_refused(db: TestDb) {
    db.store
        .execute_for_tests(&format!(
            "INSERT INTO keelson_schema_migrations (version, name, applied_at) VALUES ({}, 'future', 0)",
            LATEST_SCHEMA_VERSION + 1
        ))
        .await
        .unwrap();
    let err = Store::open(&db.url, &StoreOptions::default()).await.unwrap_err();
    match err {
        StoreError::SchemaTooNew { database, binary } => {
            assert_eq!(database, LATEST_SCHEMA_VERSION + 1);
            assert_eq!(binary, LATEST_SCHEMA_VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other}"),
    }
}

async fn ping_answers(db: TestDb) {
    db.store.ping().await.unwrap();
}

async fn enqueue_get_round_trip(db: TestDb) {
    let (store, _clock) = db.with_clock(1_000_000);
    let mut new = NewJob::new("system.noop", json!({"nested": {"a": [1, 2, 3]}, "s": "ü"}));
    new.priority = 7;
    new.max_attempts = Some(9);
    new.delay_ms = Some(500);
    let job = store.enqueue_job(&new, &retry()).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.priority, 7);
    assert_eq!(job.max_attempts, 9);
    assert_eq!(job.run_at, 1_000_500);
    assert_eq!(job.created_at, 1_000_000);
    assert_eq!(job.attempts, 0);
    let fetched = store.get_job(&job.id).await.unwrap();
    assert_eq!(fetched, job);
    assert_eq!(fetched.payload["nested"]["a"][2], 3);
    let default_budget = store.enqueue_job(&noop("system.noop"), &retry()).await.unwrap();
    assert_eq!(default_budget.max_attempts, 3);
    assert!(matches!(store.get_job("nope").await, Err(StoreError::JobNotFound(id)) if id == "nope"));
}

async fn invalid_jobs_write_nothing(db: TestDb) {
    for bad in [
        NewJob::new("Bad Kind", json!({})),
        NewJob { max_attempts: Some(0), ..noop("system.noop") },
        NewJob { delay_ms: Some(-5), ..noop("system.noop") },
    ] {
        let err = db.store.enqueue_job(&bad, &retry()).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    }
    let page = db.store.list_jobs(&JobFilter::default()).await.unwrap();
    assert!(page.jobs.is_empty());
}

async fn listing_paginates_newest_first_with_filters(db: TestDb) {
    let mut ids = Vec::new();
    for i in 0..25 {
        let kind = if i % 2 == 0 { "kind.even" } else { "kind.odd" };
        ids.push(db.store.enqueue_job(&noop(kind), &retry()).await.unwrap().id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = db
            .store
            .list_jobs(&JobFilter { limit: 10, page_token: token.clone(), ..Default::default() })
            .await
            .unwrap();
        assert!(page.jobs.len() <= 10);
        seen.extend(page.jobs.iter().map(|j| j.id.clone()));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ids, "pages must cover every job once, newest first");

    let odd = db
        .store
        .list_jobs(&JobFilter { kind: Some("kind.odd".into()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(odd.jobs.len(), 12);
    assert!(odd.next_page_token.is_none());
    let running =
        db.store.list_jobs(&JobFilter { status: Some(JobStatus::Running), ..Default::default() }).await.unwrap();
    assert!(running.jobs.is_empty());

    let bad_token = JobFilter { page_token: Some("garbage".into()), ..Default::default() };
    assert!(matches!(db.store.list_jobs(&bad_token).await, Err(StoreError::InvalidArgument(_))));
    let too_big = JobFilter { limit: 5_000, ..Default::default() };
    assert!(matches!(db.store.list_jobs(&too_big).await, Err(StoreError::InvalidArgument(_))));
}

async fn claim_respects_priority_delay_and_kinds(db: TestDb) {
    let (store, clock) = db.with_clock(10_000);
    let low = store.enqueue_job(&noop("a"), &retry()).await.unwrap();
    let high = store.enqueue_job(&NewJob { priority: 5, ..noop("a") }, &retry()).await.unwrap();
    let delayed =
        store.enqueue_job(&NewJob { priority: 9, delay_ms: Some(5_000), ..noop("a") }, &retry()).await.unwrap();
    let other_kind = store.enqueue_job(&NewJob { priority: 100, ..noop("b") }, &retry()).await.unwrap();
    let kinds = vec!["a".to_string()];

    let first = store.claim_job("w1", &kinds, 30_000).await.unwrap().unwrap();
    assert_eq!(first.job.id, high.id);
    assert_eq!(first.job.status, JobStatus::Running);
    assert_eq!(first.job.attempts, 1);
    assert_eq!(first.job.lease_owner.as_deref(), Some("w1"));
    assert_eq!(first.job.lease_expires_at, Some(40_000));
    let second = store.claim_job("w1", &kinds, 30_000).await.unwrap().unwrap();
    assert_eq!(second.job.id, low.id);
    assert!(store.claim_job("w1", &kinds, 30_000).await.unwrap().is_none(), "delayed job is not due yet");
    clock.advance(5_000);
    let third = store.claim_job("w1", &kinds, 30_000).await.unwrap().unwrap();
    assert_eq!(third.job.id, delayed.id);
    assert!(store.claim_job("w1", &[], 30_000).await.unwrap().is_none());
    let b = store.claim_job("w2", &["b".to_string(), "c".to_string()], 30_000).await.unwrap().unwrap();
    assert_eq!(b.job.id, other_kind.id);
    let attempts = store.list_job_attempts(&b.job.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].worker, "w2");
    assert_eq!(attempts[0].outcome, None);
}

async fn heartbeat_extends_and_detects_lost_lease(db: TestDb) {
    let (store, clock) = db.with_clock(0);
    let job = store.enqueue_job(&noop("a"), &retry()).await.unwrap();
    let kinds = vec!["a".to_string()];
    let claimed = store.claim_job("w1", &kinds, 1_000).await.unwrap().unwrap();
    clock.advance(900);
    store.heartbeat_job(&claimed, 1_000).await.unwrap();
    assert_eq!(store.get_job(&job.id).await.unwrap().lease_expires_at, Some(1_900));
    clock.advance(950);
    assert_eq!(store.recover_expired_leases().await.unwrap(), 0, "heartbeat kept the lease alive");
    clock.advance(100);
    assert_eq!(store.recover_expired_leases().await.unwrap(), 1);
    let recovered = store.get_job(&job.id).await.unwrap();
    assert_eq!(recovered.status, JobStatus::Queued);
    assert!(recovered.last_error.unwrap().contains("lease expired"));
    assert!(matches!(store.heartbeat_job(&claimed, 1_000).await, Err(StoreError::LeaseLost(_))));
    let again = store.claim_job("w2", &kinds, 1_000).await.unwrap().unwrap();
    assert_eq!(again.job.attempts, 2);
    assert!(matches!(store.complete_job(&claimed, &json!(1)).await, Err(StoreError::LeaseLost(_))));
    let done = store.complete_job(&again, &json!({"ok": true})).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.result, Some(json!({"ok": true})));
    assert_eq!(done.lease_owner, None);
    let attempts = store.list_job_attempts(&job.id).await.unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| (a.worker.as_str(), a.outcome.as_deref())).collect();
    assert_eq!(outcomes, vec![("w1", Some("lease_expired")), ("w2", Some("succeeded"))]);
}

async fn failures_back_off_then_dead_letter(db: TestDb) {
    let (store, clock) = db.with_clock(0);
    let policy = retry();
    let job = store.enqueue_job(&noop("a"), &policy).await.unwrap();
    let kinds = vec!["a".to_string()];
    for attempt in 1..=3 {
        let claimed = store.claim_job("w", &kinds, 10_000).await.unwrap().expect("job is due");
        assert_eq!(claimed.job.attempts, attempt);
        let failed = store.fail_job(&claimed, &format!("boom {attempt}"), FailureMode::Retry, &policy).await.unwrap();
        if attempt < 3 {
            assert_eq!(failed.status, JobStatus::Queued);
            let delay = failed.run_at - clock.now_millis();
            let base = policy.backoff_ms(attempt);
            assert!(delay >= base && delay <= base + base / 5, "attempt {attempt}: delay {delay}, base {base}");
            assert!(store.claim_job("w", &kinds, 10_000).await.unwrap().is_none(), "backing off");
            clock.advance(delay);
        } else {
            assert_eq!(failed.status, JobStatus::Dead);
            assert_eq!(failed.last_error.as_deref(), Some("boom 3"));
            assert!(failed.finished_at.is_some());
        }
    }
    clock.advance(1_000_000);
    assert!(store.claim_job("w", &kinds, 10_000).await.unwrap().is_none(), "dead jobs are never claimed");
    let attempts = store.list_job_attempts(&job.id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.outcome.as_deref() == Some("failed")));
    assert_eq!(attempts[1].error.as_deref(), Some("boom 2"));

    let retried = store.retry_job(&job.id).await.unwrap();
    assert_eq!(retried.status, JobStatus::Queued);
    assert_eq!(retried.max_attempts, 6);
    let claimed = store.claim_job("w", &kinds, 10_000).await.unwrap().unwrap();
    assert_eq!(claimed.job.attempts, 4);
}

async fn permanent_failure_dead_letters_at_once(db: TestDb) {
    let job = db.store.enqueue_job(&noop("a"), &retry()).await.unwrap();
    let claimed = db.store.claim_job("w", &["a".to_string()], 10_000).await.unwrap().unwrap();
    let failed = db.store.fail_job(&claimed, "bad payload", FailureMode::Permanent, &retry()).await.unwrap();
    assert_eq!(failed.status, JobStatus::Dead);
    assert_eq!(failed.attempts, 1);
    assert_eq!(db.store.get_job(&job.id).await.unwrap().status, JobStatus::Dead);
}

async fn expired_lease_on_last_attempt_dead_letters(db: TestDb) {
    let (store, clock) = db.with_clock(0);
    let job = store.enqueue_job(&NewJob { max_attempts: Some(1), ..noop("a") }, &retry()).await.unwrap();
    store.claim_job("w", &["a".to_string()], 100).await.unwrap().unwrap();
    clock.advance(101);
    assert_eq!(store.recover_expired_leases().await.unwrap(), 1);
    let dead = store.get_job(&job.id).await.unwrap();
    assert_eq!(dead.status, JobStatus::Dead);
    assert!(dead.finished_at.is_some());
}

async fn release_does_not_spend_an_attempt(db: TestDb) {
    let job = db.store.enqueue_job(&noop("a"), &retry()).await.unwrap();
    let claimed = db.store.claim_job("w", &["a".to_string()], 10_000).await.unwrap().unwrap();
    db.store.release_job(&claimed).await.unwrap();
    let released = db.store.get_job(&job.id).await.unwrap();
    assert_eq!(released.status, JobStatus::Queued);
    assert_eq!(released.attempts, 0);
    assert!(db.store.list_job_attempts(&job.id).await.unwrap().is_empty());
    let again = db.store.claim_job("w", &["a".to_string()], 10_000).await.unwrap().unwrap();
    assert_eq!(again.job.attempts, 1);
}

async fn cancel_and_retry_follow_the_state_machine(db: TestDb) {
    let queued = db.store.enqueue_job(&noop("a"), &retry()).await.unwrap();
    let cancelled = db.store.cancel_job(&queued.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(matches!(db.store.cancel_job(&queued.id).await, Err(StoreError::Conflict(_))));
    assert!(db.store.claim_job("w", &["a".to_string()], 10_000).await.unwrap().is_none());
    assert_eq!(db.store.retry_job(&queued.id).await.unwrap().status, JobStatus::Queued);

    let claimed = db.store.claim_job("w", &["a".to_string()], 10_000).await.unwrap().unwrap();
    let err = db.store.cancel_job(&claimed.job.id).await.unwrap_err();
    assert!(err.to_string().contains("running"), "{err}");
    db.store.complete_job(&claimed, &json!(null)).await.unwrap();
    assert!(matches!(db.store.retry_job(&claimed.job.id).await, Err(StoreError::Conflict(_))));
    assert!(matches!(db.store.cancel_job("missing").await, Err(StoreError::JobNotFound(_))));
    assert!(matches!(db.store.retry_job("missing").await, Err(StoreError::JobNotFound(_))));
}

async fn concurrent_claimers_never_share_a_job(db: TestDb) {
    const JOBS: usize = 120;
    for _ in 0..JOBS {
        db.store.enqueue_job(&noop("a"), &retry()).await.unwrap();
    }
    let stores = [db.store.clone(), db.second_store().await];
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for t in 0..3 {
            let store = store.clone();
            let claimed = claimed.clone();
            tasks.push(tokio::spawn(async move {
                let worker = format!("w{i}-{t}");
                while let Some(job) = store.claim_job(&worker, &["a".to_string()], 60_000).await.unwrap() {
                    claimed.lock().unwrap().push(job.job.id.clone());
                    store.complete_job(&job, &json!(worker)).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let claimed = claimed.lock().unwrap().clone();
    let unique: HashSet<_> = claimed.iter().collect();
    assert_eq!(claimed.len(), JOBS, "every job claimed");
    assert_eq!(unique.len(), JOBS, "no job claimed twice");
}

/// Counts executions per job id.
#[derive(Default)]
struct CountingHandler {
    runs: Mutex<HashMap<String, usize>>,
}

#[async_trait::async_trait]
impl JobHandler for CountingHandler {
    async fn run(&self, job: &keelson_core::jobs::Job) -> Result<serde_json::Value, JobFailure> {
        *self.runs.lock().unwrap().entry(job.id.clone()).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(json!({"ran": true}))
    }
}

struct AlwaysFails;

#[async_trait::async_trait]
impl JobHandler for AlwaysFails {
    async fn run(&self, _job: &keelson_core::jobs::Job) -> Result<serde_json::Value, JobFailure> {
        Err(JobFailure::retryable("always fails"))
    }
}

fn fast_worker(id: &str) -> WorkerOptions {
    WorkerOptions {
        worker_id: id.to_string(),
        concurrency: 3,
        lease: Duration::from_secs(5),
        heartbeat: Duration::from_secs(1),
        poll_interval: Duration::from_millis(20),
        retry: RetryPolicy { default_max_attempts: 3, backoff_base_ms: 10, backoff_max_ms: 50 },
        shutdown_grace: Duration::from_secs(5),
    }
}

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn all_in_status(store: &Store, status: JobStatus, expected: usize) -> bool {
    let page = store.list_jobs(&JobFilter { status: Some(status), limit: 1_000, ..Default::default() }).await.unwrap();
    page.jobs.len() == expected
}

async fn two_workers_run_every_job_exactly_once(db: TestDb) {
    const JOBS: usize = 100;
    let handler = Arc::new(CountingHandler::default());
    let mut registry = HandlerRegistry::new();
    registry.register("count", handler.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let first = Worker::new(db.store.clone(), registry.clone(), fast_worker("first"));
    let second = Worker::new(db.second_store().await, registry, fast_worker("second"));
    let workers = [tokio::spawn(first.run(stop_rx.clone())), tokio::spawn(second.run(stop_rx))];
    let mut ids = Vec::new();
    for i in 0..JOBS {
        ids.push(db.store.enqueue_job(&NewJob::new("count", json!({ "i": i })), &retry()).await.unwrap().id);
    }
    wait_until("all jobs to succeed", || all_in_status(&db.store, JobStatus::Succeeded, JOBS)).await;
    stop_tx.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap().unwrap();
    }
    let runs = handler.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), JOBS);
    assert!(runs.values().all(|n| *n == 1), "a job ran twice: {runs:?}");
    let mut workers_seen = HashSet::new();
    for id in &ids {
        let attempts = db.store.list_job_attempts(id).await.unwrap();
        assert_eq!(attempts.len(), 1);
        workers_seen.insert(attempts[0].worker.clone());
    }
    assert!(!workers_seen.is_empty());
}

async fn worker_dead_letters_a_job_that_always_fails(db: TestDb) {
    let mut registry = HandlerRegistry::new();
    registry.register("fails", Arc::new(AlwaysFails));
    let options = fast_worker("w");
    let job = db.store.enqueue_job(&NewJob::new("fails", json!({})), &options.retry).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Worker::new(db.store.clone(), registry, options).run(stop_rx));
    wait_until("the job to be dead-lettered", || all_in_status(&db.store, JobStatus::Dead, 1)).await;
    stop_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
    let dead = db.store.get_job(&job.id).await.unwrap();
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("always fails"));
    assert_eq!(db.store.list_job_attempts(&job.id).await.unwrap().len(), 3);
}

async fn worker_retries_a_job_whose_lease_expired(db: TestDb) {
    let job = db.store.enqueue_job(&NewJob::new("count", json!({})), &retry()).await.unwrap();
    // A worker that claims and then dies: it never heartbeats or completes.
    db.store.claim_job("crashed", &["count".to_string()], 300).await.unwrap().unwrap();
    let handler = Arc::new(CountingHandler::default());
    let mut registry = HandlerRegistry::new();
    registry.register("count", handler.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Worker::new(db.second_store().await, registry, fast_worker("rescuer")).run(stop_rx));
    wait_until("the orphaned job to succeed", || all_in_status(&db.store, JobStatus::Succeeded, 1)).await;
    stop_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
    let done = db.store.get_job(&job.id).await.unwrap();
    assert_eq!(done.attempts, 2);
    let attempts = db.store.list_job_attempts(&job.id).await.unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| (a.worker.as_str(), a.outcome.as_deref())).collect();
    assert_eq!(outcomes, vec![("crashed", Some("lease_expired")), ("rescuer", Some("succeeded"))]);
}

async fn counts_by_status(db: TestDb) {
    for _ in 0..3 {
        db.store.enqueue_job(&noop("a"), &retry()).await.unwrap();
    }
    let claimed = db.store.claim_job("w", &["a".to_string()], 10_000).await.unwrap().unwrap();
    db.store.complete_job(&claimed, &json!(1)).await.unwrap();
    let mut counts = db.store.count_jobs_by_status().await.unwrap();
    counts.sort_by_key(|(status, _)| status.as_str());
    assert_eq!(counts, vec![(JobStatus::Queued, 2), (JobStatus::Succeeded, 1)]);
}
