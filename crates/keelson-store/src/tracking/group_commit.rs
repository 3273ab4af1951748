//! Group commit for run logging: concurrent `log_batch` calls share one write transaction.
//!
//! SQLite has one writer and every commit costs a sync; PostgreSQL also pays a WAL flush per
//! commit. Training jobs log from many processes at once, so each call queues its batch and the
//! first caller to take the leader lock writes everything queued in one transaction. Each caller
//! is answered only after the transaction that holds its batch commits. If any batch of a group
//! fails (a changed param, say), the group is rolled back and every batch is written again in its
//! own transaction, so one caller's mistake never fails or half-writes another's batch.

use super::metrics::insert_metrics;
use super::runs::{insert_params, upsert_run_tags};
use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::tracking::{Metric, Param, Tag};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Rows (metrics + params + tags) one group transaction takes at most; the rest wait for the
/// next group. Bounds how long one transaction holds the writer.
const MAX_GROUP_ROWS: usize = 20_000;

pub(crate) struct PendingBatch {
    pub run_id: String,
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl PendingBatch {
    fn rows(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }
}

#[derive(Default)]
pub(crate) struct BatchQueue {
    pending: Mutex<Vec<PendingBatch>>,
    leader: Arc<tokio::sync::Mutex<()>>,
    transactions: AtomicU64,
    batches: AtomicU64,
}

/// How well group commit is grouping: committed write transactions and the batches they held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupCommitStats {
    pub transactions: u64,
    pub batches: u64,
}

impl std::fmt::Debug for BatchQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue").finish_non_exhaustive()
    }
}

impl BatchQueue {
    fn push(&self, batch: PendingBatch) {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(batch);
    }

    fn queued(&self) -> usize {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Takes queued batches in arrival order, up to `MAX_GROUP_ROWS` rows (always at least one).
    fn take_group(&self) -> Vec<PendingBatch> {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut rows = 0;
        let mut count = 0;
        for batch in pending.iter() {
            rows += batch.rows();
            if count > 0 && rows > MAX_GROUP_ROWS {
                break;
            }
            count += 1;
        }
        pending.drain(..count).collect()
    }
}

impl Store {
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            transactions: self.batches.transactions.load(Ordering::Relaxed),
            batches: self.batches.batches.load(Ordering::Relaxed),
        }
    }

    /// Holds back group writes until the guard is dropped, so a test can queue a known group.
    #[doc(hidden)]
    pub async fn pause_group_commit_for_tests(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.batches.leader.clone().lock_owned().await
    }

    /// Batches waiting for a group commit.
    #[doc(hidden)]
    pub fn queued_batches_for_tests(&self) -> usize {
        self.batches.queued()
    }

    /// Queues one batch and returns once a committed transaction holds it.
    pub(crate) async fn write_batch_grouped(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<(), StoreError> {
        let (done, mut answer) = oneshot::channel();
        self.batches.push(PendingBatch {
            run_id: run_id.to_string(),
            metrics: metrics.to_vec(),
            params: params.to_vec(),
            tags: tags.to_vec(),
            done,
        });
        // Either a leader writes our batch while we wait, or we become the leader.
        let leadership = tokio::select! {
            biased;
            result = &mut answer => return result.unwrap_or_else(|_| Err(group_lost())),
            guard = self.batches.leader.clone().lock_owned() => guard,
        };
        // The leader before us may have answered just as it let go.
        match answer.try_recv() {
            Ok(result) => return result,
            Err(oneshot::error::TryRecvError::Closed) => return Err(group_lost()),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        // Our batch is still queued, so the group is not empty. The group is written by its own
        // task: a caller that goes away (a closed connection) must not abort the others' writes.
        let group = self.batches.take_group();
        let store = self.clone();
        tokio::spawn(async move {
            store.write_group(group).await;
            drop(leadership);
        });
        answer.await.unwrap_or_else(|_| Err(group_lost()))
    }

    async fn write_group(&self, group: Vec<PendingBatch>) {
        if group.len() > 1 {
            match self.write_batches_in_one_transaction(&group).await {
                Ok(()) => {
                    for batch in group {
                        let _ = batch.done.send(Ok(()));
                    }
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, batches = group.len(), "group commit failed; writing its batches one by one");
                }
            }
        }
        for batch in group {
            let result = self.write_batches_in_one_transaction(std::slice::from_ref(&batch)).await;
            let _ = batch.done.send(result);
        }
    }

    async fn write_batches_in_one_transaction(&self, batches: &[PendingBatch]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        for batch in batches {
            insert_params(&mut tx, self.backend, &batch.run_id, &batch.params).await?;
            insert_metrics(&mut tx, self.backend, &batch.run_id, &batch.metrics).await?;
            upsert_run_tags(&mut tx, self.backend, &batch.run_id, &batch.tags).await?;
        }
        tx.commit().await?;
        self.batches.transactions.fetch_add(1, Ordering::Relaxed);
        self.batches.batches.fetch_add(batches.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn group_lost() -> StoreError {
    StoreError::Database(sqlx::Error::WorkerCrashed)
}
