//! Registry and catalog persistence on both backends: version numbers, renames that carry
//! everything along, alias moves with their history, compare-and-set refusals, deletion rules,
//! approvals, and catalog syncs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use keelson_core::registry::{Approval, Stage};
use keelson_core::search::{parse_model_version_filter, parse_registered_model_filter};
use keelson_core::tracking::Tag;
use keelson_store::catalog::CatalogUpsert;
use keelson_store::registry::{AliasChange, NewModelVersion};
use keelson_store::StoreError;

both_backends!(
    versions_are_numbered_per_model_and_never_reused,
    rename_carries_versions_tags_aliases_and_history,
    alias_moves_are_recorded_and_compare_and_set,
    aliased_versions_cannot_be_deleted,
    stage_transitions_archive_others,
    search_filters_and_prompts,
    approvals_replace_per_approver,
    catalog_sync_writes_all_or_nothing,
);

fn version(name: &str) -> NewModelVersion {
    NewModelVersion { name: name.into(), source: "s3://bucket/model".into(), ..Default::default() }
}

fn change(actor: &str, expected: Option<Option<i64>>) -> AliasChange<'_> {
    AliasChange { actor, reason: "test", expected_current: expected }
}

async fn versions_are_numbered_per_model_and_never_reused(db: TestDb) {
    let store = &db.store;
    store.create_registered_model("a", None, &[], None).await.unwrap();
    store.create_registered_model("b", None, &[], None).await.unwrap();
    for expected in 1..=3 {
        assert_eq!(store.create_model_version(&version("a")).await.unwrap().number(), expected);
    }
    assert_eq!(store.create_model_version(&version("b")).await.unwrap().number(), 1);
    store.delete_model_version("a", 3).await.unwrap();
    assert!(matches!(store.get_model_version("a", 3).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.create_model_version(&version("a")).await.unwrap().number(), 4);
    assert!(matches!(store.create_model_version(&version("missing")).await, Err(StoreError::NotFound(_))));
    let err = store.create_registered_model("a", None, &[], None).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(ref m) if m.contains("Registered Model (name=a)")), "{err}");
}

async fn rename_carries_versions_tags_aliases_and_history(db: TestDb) {
    let store = &db.store;
    store.create_registered_model("old", Some("d"), &[Tag::new("team", "risk")], None).await.unwrap();
    store.create_model_version(&version("old")).await.unwrap();
    store.set_model_version_tag("old", 1, &Tag::new("k", "v")).await.unwrap();
    store.set_registered_model_alias("old", "prod", 1, &change("alice", None)).await.unwrap();
    store.set_promotion_policy("old", "prod", "{}", "alice").await.unwrap();
    store.create_registered_model("taken", None, &[], None).await.unwrap();
    assert!(matches!(store.rename_registered_model("old", "taken").await, Err(StoreError::AlreadyExists(_))));

    let renamed = store.rename_registered_model("old", "new").await.unwrap();
    assert_eq!(renamed.tags, vec![Tag::new("team", "risk")]);
    assert_eq!(renamed.aliases[0].alias, "prod");
    let v1 = store.get_model_version("new", 1).await.unwrap();
    assert_eq!(v1.tags, vec![Tag::new("k", "v")]);
    assert_eq!(v1.aliases, vec!["prod".to_string()]);
    assert_eq!(store.alias_history("new", Some("prod")).await.unwrap().len(), 1);
    assert!(store.promotion_policy("new", "prod").await.unwrap().is_some());
    assert!(matches!(store.get_registered_model("old").await, Err(StoreError::NotFound(_))));
}

async fn alias_moves_are_recorded_and_compare_and_set(db: TestDb) {
    let store = &db.store;
    store.create_registered_model("m", None, &[], None).await.unwrap();
    store.create_model_version(&version("m")).await.unwrap();
    store.create_model_version(&version("m")).await.unwrap();
    store.set_registered_model_alias("m", "prod", 1, &change("alice", Some(None))).await.unwrap();
    // Setting the holder again records nothing.
    store.set_registered_model_alias("m", "prod", 1, &change("alice", Some(Some(1)))).await.unwrap();
    // A check made against a stale holder is refused and changes nothing.
    let stale = store.set_registered_model_alias("m", "prod", 2, &change("bob", Some(None))).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict(_)), "{stale}");
    assert_eq!(store.alias_holder("m", "prod").await.unwrap(), Some(1));
    store.set_registered_model_alias("m", "prod", 2, &change("bob", Some(Some(1)))).await.unwrap();
    store.delete_registered_model_alias("m", "prod", &change("carol", None)).await.unwrap();
    store.delete_registered_model_alias("m", "prod", &change("carol", None)).await.unwrap();
    let events = store.alias_history("m", Some("prod")).await.unwrap();
    let moves: Vec<_> =
        events.iter().map(|e| (e.from_version.clone(), e.to_version.clone(), e.actor.as_str())).collect();
    assert_eq!(
        moves,
        vec![
            (None, Some("1".into()), "alice"),
            (Some("1".into()), Some("2".into()), "bob"),
            (Some("2".into()), None, "carol")
        ]
    );
    assert!(matches!(
        store.set_registered_model_alias("m", "prod", 9, &change("x", None)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn aliased_versions_cannot_be_deleted(db: TestDb) {
    let store = &db.store;
    store.create_registered_model("m", None, &[], None).await.unwrap();
    store.create_model_version(&version("m")).await.unwrap();
    store.set_model_version_tag("m", 1, &Tag::new("k", "v")).await.unwrap();
    store.set_registered_model_alias("m", "prod", 1, &change("a", None)).await.unwrap();
    let err = store.delete_model_version("m", 1).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(ref m) if m.contains("'prod'")), "{err}");
    let kept = store.get_model_version("m", 1).await.unwrap();
    assert_eq!(kept.tags, vec![Tag::new("k", "v")], "the refused delete wrote nothing");
    store.delete_registered_model_alias("m", "prod", &change("a", None)).await.unwrap();
    store.delete_model_version("m", 1).await.unwrap();
    assert!(store.latest_versions("m").await.unwrap().is_empty());
}

async fn stage_transitions_archive_others(db: TestDb) {
    let store = &db.store;
    store.create_registered_model("m", None, &[], None).await.unwrap();
    for _ in 0..3 {
        store.create_model_version(&version("m")).await.unwrap();
    }
    store.transition_model_version_stage("m", 1, Stage::Production, false).await.unwrap();
    store.transition_model_version_stage("m", 2, Stage::Production, false).await.unwrap();
    store.transition_model_version_stage("m", 3, Stage::Production, true).await.unwrap();
    let stages: Vec<String> = stages_of(store, &[1, 2, 3]).await.into_iter().map(|(_, stage)| stage).collect();
    assert_eq!(stages, ["Archived", "Archived", "Production"]);
    let latest = store.latest_versions("m").await.unwrap();
    let latest: Vec<(String, String)> = latest.into_iter().map(|v| (v.current_stage, v.version)).collect();
    assert_eq!(latest, vec![("Archived".into(), "2".into()), ("Production".into(), "3".into())]);
}

async fn stages_of(store: &keelson_store::Store, versions: &[i64]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for v in versions {
        out.push((*v, store.get_model_version("m", *v).await.unwrap().current_stage));
    }
    out
}

async fn search_filters_and_prompts(db: TestDb) {
    let store = &db.store;
    store.create_registered_model("fraud-a", None, &[Tag::new("team", "risk")], None).await.unwrap();
    store.create_registered_model("fraud-b", None, &[Tag::new("team", "growth")], None).await.unwrap();
    store.create_registered_model("Fraud-C", None, &[], None).await.unwrap();
    store.create_registered_model("greet", None, &[Tag::new("mlflow.prompt.is_prompt", "true")], None).await.unwrap();
    let names = |page: keelson_core::tracking::Page<keelson_core::registry::RegisteredModel>| {
        page.items.into_iter().map(|m| m.name).collect::<Vec<_>>()
    };
    let all = store.search_registered_models(&Default::default(), &[], 100, None).await.unwrap();
    assert_eq!(names(all), ["Fraud-C", "fraud-a", "fraud-b"], "prompts are left out, name order");
    let like = parse_registered_model_filter("name LIKE 'fraud%'").unwrap();
    assert_eq!(names(store.search_registered_models(&like, &[], 100, None).await.unwrap()), ["fraud-a", "fraud-b"]);
    let ilike = parse_registered_model_filter("name ILIKE 'fraud%' AND tags.team != 'growth'").unwrap();
    assert_eq!(names(store.search_registered_models(&ilike, &[], 100, None).await.unwrap()), ["fraud-a"]);
    let prompts = parse_registered_model_filter("tags.`mlflow.prompt.is_prompt` = 'true'").unwrap();
    assert_eq!(names(store.search_registered_models(&prompts, &[], 100, None).await.unwrap()), ["greet"]);
    let first = store.search_registered_models(&Default::default(), &[], 2, None).await.unwrap();
    let token = first.next_page_token.clone().unwrap();
    let second = store.search_registered_models(&Default::default(), &[], 2, Some(&token)).await.unwrap();
    assert_eq!(names(second), ["fraud-b"]);

    for _ in 0..3 {
        store.create_model_version(&NewModelVersion { run_id: Some("r1".into()), ..version("fraud-a") }).await.unwrap();
    }
    let filter = parse_model_version_filter("name = 'fraud-a' AND version_number >= 2 AND run_id IN ('r1')").unwrap();
    let order = [keelson_core::search::parse_model_version_order_by("version_number ASC").unwrap()];
    let found = store.search_model_versions(&filter, &order, 10, None).await.unwrap();
    assert_eq!(found.items.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(), ["2", "3"]);
}

async fn approvals_replace_per_approver(db: TestDb) {
    let store = &db.store;
    store.create_registered_model("m", None, &[], None).await.unwrap();
    store.create_model_version(&version("m")).await.unwrap();
    let approval = |who: &str, comment: &str| Approval {
        name: "m".into(),
        version: "1".into(),
        alias: "prod".into(),
        approver: who.into(),
        roles: vec!["approver".into()],
        comment: Some(comment.into()),
        timestamp: 0,
    };
    store.approve_model_version(&approval("alice", "first")).await.unwrap();
    store.approve_model_version(&approval("alice", "again")).await.unwrap();
    store.approve_model_version(&approval("bob", "ok")).await.unwrap();
    let approvals = store.approvals("m", 1, Some("prod")).await.unwrap();
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals.iter().find(|a| a.approver == "alice").unwrap().comment.as_deref(), Some("again"));
    assert!(store.approvals("m", 1, Some("staging")).await.unwrap().is_empty());
    let missing = Approval { version: "7".into(), ..approval("alice", "x") };
    assert!(matches!(store.approve_model_version(&missing).await, Err(StoreError::NotFound(_))));
}

async fn catalog_sync_writes_all_or_nothing(db: TestDb) {
    let store = &db.store;
    let upsert = |id: &str, digest: &str| CatalogUpsert {
        id: id.into(),
        entry_json: format!(r#"{{"id":"{id}","provider":"openai","model":"m","task":"chat"}}"#),
        digest: digest.into(),
    };
    store.apply_catalog_sync("vendor", "/v.yaml", &[upsert("a/x", "1"), upsert("a/y", "1")], &[], "{}").await.unwrap();
    // Another source may not take an id; the whole sync is refused.
    let err = store
        .apply_catalog_sync("other", "/o.yaml", &[upsert("b/z", "1"), upsert("a/x", "2")], &[], "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(ref m) if m.contains("vendor")), "{err}");
    assert!(store.catalog_model("b/z").await.is_err(), "nothing of the refused sync was written");
    store.apply_catalog_sync("vendor", "/v.yaml", &[upsert("a/x", "2")], &["a/y".into()], "{}").await.unwrap();
    let active: Vec<String> = store.catalog_models(false).await.unwrap().into_iter().map(|m| m.entry.id).collect();
    assert_eq!(active, ["a/x"]);
    assert_eq!(store.catalog_model("a/y").await.unwrap().status, "removed");
    store.record_catalog_score("a/x", "accuracy", 0.5, None).await.unwrap();
    store.record_catalog_score("a/x", "accuracy", 0.7, Some("eval-2")).await.unwrap();
    let scores = store.catalog_model("a/x").await.unwrap().scores;
    assert_eq!(scores.len(), 1);
    assert_eq!((scores[0].value, scores[0].evaluation.as_deref()), (0.7, Some("eval-2")));
    assert!(matches!(store.record_catalog_score("nope", "m", 1.0, None).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.catalog_syncs(10).await.unwrap().len(), 2);
}
