//! The secret rows and the audit chain on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use keelson_store::audit::{AuditEvent, AuditQuery, GENESIS_HASH};

fn event(principal: &str, n: i64) -> AuditEvent {
    AuditEvent {
        principal: principal.to_string(),
        workspace: "default".to_string(),
        action: "POST /api/v1/jobs".to_string(),
        resource: "/api/v1/jobs".to_string(),
        status: 200 + n,
        request_id: format!("req-{n}"),
        request_digest: "a".repeat(64),
        response_digest: "b".repeat(64),
    }
}

async fn secrets_upsert_keep_their_creation_and_rotate_by_compare_and_set(db: TestDb) {
    let store = &db.store;
    let first = store.put_secret("smtp", "k1", "n1", "c1", "alice").await.unwrap();
    let second = store.put_secret("smtp", "k1", "n2", "c2", "bob").await.unwrap();
    assert_eq!((second.created, second.created_by.as_str()), (first.created, "alice"));
    assert_eq!((second.updated_by.as_str(), second.ciphertext.as_str()), ("bob", "c2"));
    assert!(!store.reencrypt_secret("smtp", "k0", "k2", "n3", "c3").await.unwrap(), "stale key id");
    assert!(store.reencrypt_secret("smtp", "k1", "k2", "n3", "c3").await.unwrap());
    assert_eq!(store.get_secret("smtp").await.unwrap().unwrap().key_id, "k2");
    assert_eq!(store.list_secrets().await.unwrap().len(), 1);
    assert!(store.delete_secret("smtp").await.unwrap());
    assert!(!store.delete_secret("smtp").await.unwrap());
    assert_eq!(store.get_secret("smtp").await.unwrap(), None);
}

async fn the_audit_chain_is_one_line_across_writers_and_finds_tampering(db: TestDb) {
    let other = db.second_store().await;
    let written = db.store.append_audit(&[event("a", 0), event("a", 1)]).await.unwrap();
    assert_eq!(written[0].seq, 1);
    assert_eq!(written[0].prev_hash, GENESIS_HASH);
    assert_eq!(written[1].prev_hash, written[0].hash);
    // Two pools (two replicas) appending at once still make one contiguous chain.
    let (left, right) = tokio::join!(
        async {
            for n in 0..10 {
                db.store.append_audit(&[event("left", n)]).await.unwrap();
            }
        },
        async {
            for n in 0..10 {
                other.append_audit(&[event("right", n)]).await.unwrap();
            }
        }
    );
    let ((), ()) = (left, right);
    let check = db.store.verify_audit_chain().await.unwrap();
    assert_eq!((check.records, check.broken_at), (22, None), "{check:?}");
    let rights = db
        .store
        .audit_records(&AuditQuery { principal: Some("right".into()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rights.len(), 10);
    assert_eq!(rights[9].event.status, 209);

    db.store.execute_for_tests("UPDATE audit_log SET status = 500 WHERE seq = 7").await.unwrap();
    let check = db.store.verify_audit_chain().await.unwrap();
    assert_eq!(check.broken_at, Some(7), "{check:?}");
}

both_backends!(
    secrets_upsert_keep_their_creation_and_rotate_by_compare_and_set,
    the_audit_chain_is_one_line_across_writers_and_finds_tampering
);
