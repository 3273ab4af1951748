//! Monitoring: monitors and their schedule claims, reports, and alerts with de-duplication,
//! cool-down and resolution, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use keelson_store::monitoring::{FiredRule, ReportRecord};
use keelson_store::StoreError;
use serde_json::json;

fn rule(name: &str) -> FiredRule {
    FiredRule {
        rule: name.to_string(),
        severity: "warning".into(),
        title: format!("{name} failed"),
        details: json!({"rule": name, "value": 0.5}),
    }
}

fn report(id: &str, monitor: Option<&str>, created: i64) -> ReportRecord {
    ReportRecord {
        id: id.into(),
        monitor: monitor.map(str::to_string),
        created,
        window_start: Some(created - 1000),
        window_end: Some(created),
        summary: json!({"dataset_drift": true, "scores": {"x": {"score": 0.2}}}),
        json_key: format!("monitoring/reports/{id}/report.json"),
        html_key: format!("monitoring/reports/{id}/report.html"),
    }
}

async fn monitors_are_created_replaced_listed_and_deleted(db: TestDb) {
    let (store, _clock) = db.with_clock(1_000);
    let spec = json!({"version": 1, "name": "m"});
    let created = store.create_monitor("m", &spec, Some(5_000)).await.unwrap();
    assert_eq!((created.enabled, created.next_run, created.created), (true, Some(5_000), 1_000));
    assert!(matches!(store.create_monitor("m", &spec, None).await, Err(StoreError::AlreadyExists(_))));
    let replaced = store.update_monitor("m", &json!({"version": 1, "name": "m", "x": 1}), false, None).await.unwrap();
    assert_eq!((replaced.enabled, replaced.next_run, replaced.spec["x"].clone()), (false, None, json!(1)));
    assert!(matches!(store.update_monitor("nope", &spec, true, None).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.list_monitors().await.unwrap().len(), 1);
    store.record_monitor_run("m", 2_000, Some("r1"), None).await.unwrap();
    store.record_monitor_run("m", 3_000, None, Some("boom")).await.unwrap();
    let got = store.get_monitor("m").await.unwrap();
    // A failed run keeps the last good report and records its error.
    assert_eq!(
        (got.last_run, got.last_report.as_deref(), got.last_error.as_deref()),
        (Some(3_000), Some("r1"), Some("boom"))
    );
    store.delete_monitor("m").await.unwrap();
    assert!(matches!(store.get_monitor("m").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_monitor("m").await, Err(StoreError::NotFound(_))));
}

async fn a_due_run_is_claimed_once_across_stores(db: TestDb) {
    let spec = json!({"version": 1});
    db.store.create_monitor("due", &spec, Some(100)).await.unwrap();
    db.store.create_monitor("later", &spec, Some(10_000_000_000_000)).await.unwrap();
    db.store.create_monitor("unscheduled", &spec, None).await.unwrap();
    let due = db.store.due_monitors(1_000).await.unwrap();
    assert_eq!(due.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["due"]);
    // Two schedulers (two replicas) race for the same due run: exactly one claims it.
    let other = db.second_store().await;
    let (a, b) = tokio::join!(db.store.advance_monitor("due", 100, 200), other.advance_monitor("due", 100, 200));
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|claimed| **claimed).count(), 1);
    assert_eq!(db.store.get_monitor("due").await.unwrap().next_run, Some(200));
    // A disabled monitor is never due.
    db.store.update_monitor("due", &spec, false, Some(0)).await.unwrap();
    assert!(db.store.due_monitors(1_000).await.unwrap().is_empty());
}

async fn reports_are_listed_newest_first(db: TestDb) {
    for (id, monitor, created) in [("a", Some("m"), 1), ("b", Some("m"), 3), ("c", None, 2)] {
        db.store.insert_report(&report(id, monitor, created)).await.unwrap();
    }
    let ids = |list: Vec<ReportRecord>| list.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(db.store.list_reports(None, 10).await.unwrap()), ["b", "c", "a"]);
    assert_eq!(ids(db.store.list_reports(Some("m"), 10).await.unwrap()), ["b", "a"]);
    assert_eq!(ids(db.store.list_reports(None, 1).await.unwrap()), ["b"]);
    db.store.create_monitor("m", &json!({}), None).await.unwrap();
    assert!(db.store.latest_monitor_reports().await.unwrap().is_empty());
    db.store.record_monitor_run("m", 4, Some("a"), None).await.unwrap();
    assert_eq!(ids(db.store.latest_monitor_reports().await.unwrap()), ["a"]);
    let got = db.store.get_report("c").await.unwrap();
    assert_eq!(got, report("c", None, 2));
    assert!(matches!(db.store.get_report("zzz").await, Err(StoreError::NotFound(_))));
}

async fn alerts_deduplicate_cool_down_and_resolve(db: TestDb) {
    let (store, clock) = db.with_clock(1_000_000);
    let cooldown = 60_000;
    let first = store.fire_alert("m", &rule("data_drift:x"), "r1", cooldown).await.unwrap();
    assert!(first.new && first.notify);
    assert_eq!(
        (first.alert.occurrences, first.alert.status.as_str(), first.alert.report_id.as_str()),
        (1, "firing", "r1")
    );

    clock.advance(10_000);
    let repeat = store.fire_alert("m", &rule("data_drift:x"), "r2", cooldown).await.unwrap();
    assert!(!repeat.new && !repeat.notify, "inside the cool-down: counted, not notified");
    assert_eq!(
        (repeat.alert.id.as_str(), repeat.alert.occurrences, repeat.alert.report_id.as_str()),
        (first.alert.id.as_str(), 2, "r2")
    );
    assert_eq!(repeat.alert.last_notified, Some(1_000_000));

    clock.advance(cooldown);
    let later = store.fire_alert("m", &rule("data_drift:x"), "r3", cooldown).await.unwrap();
    assert!(!later.new && later.notify, "past the cool-down: notified again");
    assert_eq!(later.alert.last_notified, Some(1_070_000));

    // Another rule of the same monitor is its own alert; another monitor's too.
    let other = store.fire_alert("m", &rule("quality:missing:y"), "r3", cooldown).await.unwrap();
    assert!(other.new && other.alert.id != first.alert.id);
    store.fire_alert("n", &rule("data_drift:x"), "r9", cooldown).await.unwrap();

    // Only the rule still failing stays firing.
    let resolved = store.resolve_alerts("m", &["quality:missing:y".to_string()]).await.unwrap();
    assert_eq!(resolved.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(), ["data_drift:x"]);
    assert_eq!(resolved[0].resolved_at, Some(1_070_000));
    let firing = store.list_alerts(Some("m"), Some("firing"), 10).await.unwrap();
    assert_eq!(firing.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(), ["quality:missing:y"]);
    assert_eq!(store.list_alerts(None, None, 10).await.unwrap().len(), 3);
    assert_eq!(store.list_alerts(None, Some("firing"), 10).await.unwrap().len(), 2);
    assert_eq!(store.firing_alert_counts().await.unwrap(), [("m".to_string(), 1), ("n".to_string(), 1)]);

    // The rule failing again after it resolved opens a new alert.
    let again = store.fire_alert("m", &rule("data_drift:x"), "r4", cooldown).await.unwrap();
    assert!(again.new && again.alert.id != first.alert.id);
    assert_eq!(store.get_alert(&first.alert.id).await.unwrap().status, "resolved");
}

async fn concurrent_firings_of_one_rule_make_one_alert(db: TestDb) {
    let other = db.second_store().await;
    let fired = rule("dataset_drift");
    let (a, b) =
        tokio::join!(db.store.fire_alert("m", &fired, "r1", 1_000), other.fire_alert("m", &fired, "r2", 1_000));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.alert.id, b.alert.id);
    assert_eq!([a.new, b.new].iter().filter(|new| **new).count(), 1);
    let alert = db.store.get_alert(&a.alert.id).await.unwrap();
    assert_eq!(alert.occurrences, 2);
}

both_backends!(
    monitors_are_created_replaced_listed_and_deleted,
    a_due_run_is_claimed_once_across_stores,
    reports_are_listed_newest_first,
    alerts_deduplicate_cool_down_and_resolve,
    concurrent_firings_of_one_rule_make_one_alert,
);
