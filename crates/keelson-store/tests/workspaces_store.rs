//! Workspaces: the list in the default database, and each workspace's own database beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use keelson_store::grants::{ExperimentChild, ResourceGrant};
use keelson_store::StoreError;

both_backends!(
    workspace_records_round_trip,
    workspace_databases_are_separate,
    grants_round_trip_and_children_find_their_experiment
);

/// A name no parallel test uses: PostgreSQL workspace schemas share the test database.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn workspace_records_round_trip(db: TestDb) {
    let store = &db.store;
    let name = unique("team");
    let made = store.create_workspace(&name, "the A team", "alice").await.unwrap();
    assert_eq!(
        (made.name.as_str(), made.description.as_str(), made.created_by.as_str()),
        (name.as_str(), "the A team", "alice")
    );
    assert!(matches!(store.create_workspace(&name, "", "bob").await, Err(StoreError::AlreadyExists(_))));
    assert!(matches!(store.create_workspace("default", "", "bob").await, Err(StoreError::AlreadyExists(_))));
    for bad in ["Team", "a_b", "../x", "x", "api"] {
        assert!(matches!(store.create_workspace(bad, "", "bob").await, Err(StoreError::InvalidArgument(_))), "{bad}");
    }
    assert_eq!(store.get_workspace(&name).await.unwrap(), made);
    assert!(store.list_workspaces().await.unwrap().iter().any(|w| w.name == name));
    let updated = store.update_workspace(&name, "renamed").await.unwrap();
    assert_eq!(updated.description, "renamed");
    store.delete_workspace_record(&name).await.unwrap();
    assert!(matches!(store.get_workspace(&name).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_workspace_record(&name).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.update_workspace(&name, "x").await, Err(StoreError::NotFound(_))));
}

async fn workspace_databases_are_separate(db: TestDb) {
    let system = &db.store;
    let name = unique("ws");
    let workspace = system.open_workspace(&name).await.unwrap();
    assert_eq!(workspace.schema_version().await.unwrap(), keelson_store::LATEST_SCHEMA_VERSION);
    assert!(workspace.resource_counts().await.unwrap().is_empty(), "a new workspace holds nothing");

    // The same name in both, each seeing only its own.
    let in_default = system.create_experiment("shared-name", None, &[]).await.unwrap();
    let in_workspace = workspace.create_experiment("shared-name", None, &[]).await.unwrap();
    workspace.create_experiment("only-in-workspace", None, &[]).await.unwrap();
    assert_eq!(system.get_experiment_by_name("shared-name").await.unwrap().experiment_id, in_default);
    assert_eq!(workspace.get_experiment_by_name("shared-name").await.unwrap().experiment_id, in_workspace);
    assert!(matches!(system.get_experiment_by_name("only-in-workspace").await, Err(StoreError::NotFound(_))));
    assert_eq!(workspace.resource_counts().await.unwrap(), vec![("experiments", 2)]);

    // Opened again (a restart), it is the same database; dropped, it is gone.
    let again = system.open_workspace(&name).await.unwrap();
    assert!(again.get_experiment_by_name("only-in-workspace").await.is_ok());
    again.close().await;
    workspace.close().await;
    system.drop_workspace_storage(&name).await.unwrap();
    let fresh = system.open_workspace(&name).await.unwrap();
    assert!(fresh.resource_counts().await.unwrap().is_empty());
    assert!(system.get_experiment_by_name("shared-name").await.is_ok(), "the default workspace is untouched");
    fresh.close().await;
    system.drop_workspace_storage(&name).await.unwrap();
    assert!(matches!(system.open_workspace("Not_Valid").await, Err(StoreError::InvalidArgument(_))));
}

async fn grants_round_trip_and_children_find_their_experiment(db: TestDb) {
    let store = &db.store;
    let grant = |id: &str, permission: &str| ResourceGrant {
        principal: "alice".into(),
        resource_type: "experiment".into(),
        resource_id: id.into(),
        permission: permission.into(),
        granted: 1,
        granted_by: "ada".into(),
    };
    store.put_resource_grant(&grant("7", "READ"), false).await.unwrap();
    assert!(matches!(store.put_resource_grant(&grant("7", "EDIT"), false).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(store.put_resource_grant(&grant("7", "EDIT"), true).await.unwrap().permission, "EDIT");
    store.put_resource_grant(&grant("*", "READ"), false).await.unwrap();
    let mut bad = grant("8", "OWNER");
    assert!(store.put_resource_grant(&bad, false).await.is_err(), "unknown permissions are refused");
    bad = ResourceGrant { resource_type: "dataset".into(), ..grant("8", "READ") };
    assert!(store.put_resource_grant(&bad, false).await.is_err(), "unknown resource types are refused");
    let held: Vec<(String, String)> =
        store.resource_grants_of("alice").await.unwrap().into_iter().map(|g| (g.resource_id, g.permission)).collect();
    assert_eq!(held, [("*".to_string(), "READ".to_string()), ("7".to_string(), "EDIT".to_string())]);
    assert!(store.delete_resource_grant("alice", "experiment", "7").await.unwrap());
    assert!(!store.delete_resource_grant("alice", "experiment", "7").await.unwrap());
    assert_eq!(store.delete_resource_grants_on("experiment", "*").await.unwrap(), 1);

    let experiment = store.create_experiment("owned", None, &[]).await.unwrap();
    assert_eq!(store.experiment_of(ExperimentChild::ByName, "owned").await.unwrap(), Some(experiment.clone()));
    assert_eq!(store.experiment_of(ExperimentChild::Run, "nope").await.unwrap(), None);
    assert_eq!(store.experiment_of(ExperimentChild::Trace, "nope").await.unwrap(), None);
    assert_eq!(store.experiment_of(ExperimentChild::LoggedModel, "nope").await.unwrap(), None);
}
