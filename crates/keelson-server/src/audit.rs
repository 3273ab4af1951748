//! The audit trail of the HTTP surface: every call to a mutating route (allowed or refused)
//! becomes one record of the hash-chained log before its answer leaves, so an acknowledged change
//! is always on the record.
//!
//! Records go through one writer task that commits whatever has queued up in one transaction
//! (group commit): concurrent writes share a commit instead of each paying for its own.

use crate::app::AppState;
use crate::identity::DEFAULT_WORKSPACE;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use keelson_core::auth::Principal;
use keelson_store::audit::AuditEvent;
use keelson_store::Store;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Events one commit takes at most.
const MAX_BATCH: usize = 256;
/// Answers larger than this are not read into memory for their digest.
const MAX_DIGESTED_ANSWER: u64 = 1 << 20;

type Pending = (AuditEvent, oneshot::Sender<Result<(), String>>);

/// The handle requests use to append records.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
}

impl AuditLog {
    /// Starts the writer on the current runtime; it ends when every handle is dropped.
    pub fn start(store: Store) -> AuditLog {
        let (queue, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(store, receiver));
        AuditLog { queue }
    }

    /// Appends one record and waits for its commit.
    pub async fn record(&self, event: AuditEvent) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.queue.send((event, done)).await.map_err(|_| "the audit writer stopped".to_string())?;
        committed.await.map_err(|_| "the audit writer stopped".to_string())?
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<AuditEvent> = batch.iter().map(|(event, _)| event.clone()).collect();
        let outcome = store.append_audit(&events).await.map(drop).map_err(|e| e.to_string());
        for (_, done) in batch.drain(..) {
            let _ = done.send(outcome.clone());
        }
    }
}

/// Middleware on every routed request: mutating methods are recorded with the principal, the
/// route, the path, the answer's status and digests of the request and the answer.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let Some(route) = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string()) else {
        return next.run(request).await;
    };
    let principal = request.extensions().get::<Principal>().map_or("anonymous", Principal::name).to_string();
    let workspace = request
        .extensions()
        .get::<crate::workspace::Workspace>()
        .map_or(DEFAULT_WORKSPACE.to_string(), |workspace| workspace.0.clone());
    let request_id = request
        .headers()
        .get(crate::app::REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let method = request.method().clone();
    let target = request.uri().path_and_query().map_or_else(|| request.uri().path().to_string(), |pq| pq.to_string());
    let resource = request.uri().path().to_string();

    // The request body is hashed as the handler reads it, so large uploads are not held here.
    let request_hasher = Arc::new(Mutex::new(Sha256::new()));
    {
        let mut hasher = request_hasher.lock().unwrap_or_else(|p| p.into_inner());
        hasher.update(method.as_str().as_bytes());
        hasher.update(b" ");
        hasher.update(target.as_bytes());
        hasher.update(b"\n");
    }
    let (parts, body) = request.into_parts();
    let feeding = request_hasher.clone();
    let body = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            feeding.lock().unwrap_or_else(|p| p.into_inner()).update(bytes);
        }
        chunk
    });
    let response = next.run(Request::from_parts(parts, Body::from_stream(body))).await;

    let (parts, body) = response.into_parts();
    let (body, response_digest) = match axum::body::HttpBody::size_hint(&body).upper() {
        Some(size) if size <= MAX_DIGESTED_ANSWER => match axum::body::to_bytes(body, size as usize).await {
            Ok(bytes) => {
                let digest = hex::encode(Sha256::digest(&bytes));
                (Body::from(bytes), digest)
            }
            Err(_) => (Body::empty(), "unreadable".to_string()),
        },
        _ => (body, "not digested (streamed answer)".to_string()),
    };
    let request_digest = hex::encode(request_hasher.lock().unwrap_or_else(|p| p.into_inner()).clone().finalize());
    let event = AuditEvent {
        principal,
        workspace,
        action: format!("{method} {route}"),
        resource,
        status: i64::from(parts.status.as_u16()),
        request_id,
        request_digest,
        response_digest,
    };
    if let Err(error) = state.audit.record(event).await {
        // The change happened; the missing record is an operator's alarm, counted and logged.
        state.metrics.audit_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(%error, %method, %route, "audit record not written");
    }
    Response::from_parts(parts, body)
}
