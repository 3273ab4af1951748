//! A deployment's replicas: worker threads that take prediction jobs from one queue, so model
//! computation never blocks the async threads that serve HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug)]
pub struct WorkerPool {
    sender: Mutex<Sender<Job>>,
    queued: Arc<AtomicUsize>,
}

#[derive(Debug, thiserror::Error)]
#[error("the deployment's workers have stopped")]
pub struct PoolStopped;

impl WorkerPool {
    /// Starts `replicas` threads named after the deployment. They stop when the pool is dropped
    /// and the jobs already queued are done.
    pub fn start(label: &str, replicas: usize) -> Result<WorkerPool, std::io::Error> {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        for index in 0..replicas.max(1) {
            let receiver = receiver.clone();
            let queued = queued.clone();
            std::thread::Builder::new()
                .name(format!("serve-{label}-{index}"))
                .spawn(move || work(&receiver, &queued))?;
        }
        Ok(WorkerPool { sender: Mutex::new(sender), queued })
    }

    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), PoolStopped> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        sender.send(Box::new(job)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            PoolStopped
        })
    }

    /// Jobs submitted that no worker has started yet.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, queued: &AtomicUsize) {
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
            receiver.recv()
        };
        let Ok(job) = job else { return };
        queued.fetch_sub(1, Ordering::Relaxed);
        // A panicking model must not take the replica down with it; the job's caller sees its
        // answer channel close and reports a failure.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_the_workers_and_survive_a_panic() {
        let pool = WorkerPool::start("t", 2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        pool.submit(|| panic!("model bug")).unwrap();
        for i in 0..10 {
            let tx = tx.clone();
            pool.submit(move || {
                let name = std::thread::current().name().unwrap_or_default().to_string();
                tx.send((i, name)).unwrap();
            })
            .unwrap();
        }
        let mut seen: Vec<(i32, String)> = (0..10).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert!(seen.iter().all(|(_, name)| name.starts_with("serve-t-")));
        assert_eq!(pool.queued(), 0);
    }
}
