//! The search compiler against real databases: each table of filters and orderings runs on
//! SQLite and on PostgreSQL with the same expected answers, so both backends agree with each
//! other and with MLflow's SQL store. The PostgreSQL copies need `KEELSON_TEST_DATABASE_URL`
//! (scripts/test sets it and runs ignored tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keelson_core::search::{parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by};
use keelson_store::tracking::search_sql::{experiment_filter_sql, experiment_order_sql, run_filter_sql, run_order_sql};
use keelson_store::Store;

mod common;

use common::TestDb;

both_backends!(
    run_filters_select_mlflow_matches,
    run_orderings_put_missing_values_last,
    filters_and_orderings_combine,
    experiment_filters_select_mlflow_matches,
    experiment_orderings_end_with_experiment_id,
);

/// Five runs over two experiments (start_time in brackets; the default order is start_time
/// DESC, run_uuid ASC, so r3, r2, r4, r1, r5):
///
/// | run | name    | status   | user  | start (end)   | acc  | loss | lr   | model   | team   |
/// |-----|---------|----------|-------|---------------|------|------|------|---------|--------|
/// | r1  | alpha   | FINISHED | alice | 1000 (2000)   | 0.9  | 0.1  | 0.01 | ResNet  | Vision |
/// | r2  | Beta    | RUNNING  | bob   | 2000 (NULL)   | 0.5  | 0.2  | 0.1  | resnet  | vision |
/// | r3  | gamma   | FAILED   | alice | 3000 (3500)   | NaN  |      | 0.01 | VGG%net |        |
/// | r4  | delta   | FINISHED | carol | 2000 (4000)   | 0.7  |      |      | res_net | nlp    |
/// | r5  | epsilon | KILLED   | bob   | 500 (600)     |      |      |      | resXnet |        |
async fn seed(store: &Store) {
    store
        .execute_for_tests(
            r#"
UPDATE experiments SET creation_time = 0, last_update_time = 0 WHERE experiment_id = 0;
INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time) VALUES
  (1, 'exp-a', 'mlflow-artifacts:/1', 100, 500),
  (2, 'Exp-B', 'mlflow-artifacts:/2', 200, 300),
  (3, 'other', 'mlflow-artifacts:/3', 200, 100);
INSERT INTO experiment_tags (experiment_id, key, value) VALUES
  (1, 'team', 'vision'),
  (2, 'team', 'Vision');
INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri) VALUES
  ('r1', 1, 'alpha', 'alice', 'FINISHED', 1000, 2000, 's3://b/r1'),
  ('r2', 1, 'Beta', 'bob', 'RUNNING', 2000, NULL, 's3://b/r2'),
  ('r3', 1, 'gamma', 'alice', 'FAILED', 3000, 3500, 's3://b/r3'),
  ('r4', 1, 'delta', 'carol', 'FINISHED', 2000, 4000, 's3://b/r4'),
  ('r5', 2, 'epsilon', 'bob', 'KILLED', 500, 600, 'file:///tmp/r5');
INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES
  ('r1', 'acc', 0.9, 0, 1, 0),
  ('r2', 'acc', 0.5, 0, 1, 0),
  ('r3', 'acc', 0, 1, 1, 0),
  ('r4', 'acc', 0.7, 0, 1, 0),
  ('r1', 'loss', 0.1, 0, 1, 0),
  ('r2', 'loss', 0.2, 0, 1, 0);
INSERT INTO params (run_uuid, key, value) VALUES
  ('r1', 'lr', '0.01'),
  ('r2', 'lr', '0.1'),
  ('r3', 'lr', '0.01'),
  ('r1', 'model', 'ResNet'),
  ('r2', 'model', 'resnet'),
  ('r3', 'model', 'VGG%net'),
  ('r4', 'model', 'res_net'),
  ('r5', 'model', 'resXnet');
INSERT INTO tags (run_uuid, key, value) VALUES
  ('r1', 'team', 'Vision'),
  ('r2', 'team', 'vision'),
  ('r4', 'team', 'nlp'),
  ('r1', 'pattern', 'a*b?[c]'),
  ('r2', 'pattern', 'axxbyc'),
  ('r3', 'note', 'it''s'),
  ('r5', 'note', 'C:\data\'),
  ('r1', 'mlflow.runName', 'alpha');
INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source) VALUES
  ('d1', 1, 'train-set', 'abc', 'local', 'file:///train'),
  ('d2', 1, 'eval-set', 'def', 'local', 'file:///eval');
INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid, tags, context) VALUES
  ('r1', 'd1', '[{"key":"mlflow.data.context","value":"training"}]', 'training'),
  ('r1', 'd2', '[{"key":"mlflow.data.context","value":"eval"}]', 'eval'),
  ('r2', 'd1', '[]', NULL),
  ('r3', 'd2', '[{"key":"mlflow.data.context","value":"eval"}]', 'eval');
"#,
        )
        .await
        .unwrap();
}

async fn search_runs(store: &Store, filter: &str, order_by: &[&str]) -> Vec<String> {
    let filter = parse_run_filter(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    let order: Vec<_> = order_by
        .iter()
        .map(|clause| parse_run_order_by(clause).unwrap_or_else(|e| panic!("{clause:?}: {e}")))
        .collect();
    let mut next = 1;
    let where_sql = run_filter_sql(&filter, &mut next, store.backend()).unwrap();
    let order_sql = run_order_sql(&order, &mut next).unwrap();
    store
        .query_run_ids_for_tests(&where_sql, &order_sql)
        .await
        .unwrap_or_else(|e| panic!("{filter:?} / {order_by:?}: {e}\n{where_sql:?}"))
}

async fn search_experiments(store: &Store, filter: &str, order_by: &[&str]) -> Vec<i64> {
    let filter = parse_experiment_filter(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    let order: Vec<_> = order_by
        .iter()
        .map(|clause| parse_experiment_order_by(clause).unwrap_or_else(|e| panic!("{clause:?}: {e}")))
        .collect();
    let mut next = 1;
    let where_sql = experiment_filter_sql(&filter, &mut next, store.backend()).unwrap();
    let order_sql = experiment_order_sql(&order, &mut next).unwrap();
    store
        .query_experiment_ids_for_tests(&where_sql, &order_sql)
        .await
        .unwrap_or_else(|e| panic!("{filter:?} / {order_by:?}: {e}\n{where_sql:?}"))
}

async fn run_filters_select_mlflow_matches(db: TestDb) {
    seed(&db.store).await;
    let cases: &[(&str, &[&str])] = &[
        ("", &["r3", "r2", "r4", "r1", "r5"]),
        // Metrics: NaN satisfies only `!=`; runs without the metric never match.
        ("metrics.acc > 0.6", &["r4", "r1"]),
        ("metrics.acc != 0.5", &["r3", "r4", "r1"]),
        ("metrics.acc = 0", &[]),
        ("metrics.acc <= 0.5", &["r2"]),
        ("metrics.acc >= 0.5 AND metrics.loss < 0.15", &["r1"]),
        ("metrics.missing > -1e300", &[]),
        ("metrics.missing != 1", &[]),
        // Params and tags: equality is exact; `!=` needs the key to exist.
        ("params.lr = '0.01'", &["r3", "r1"]),
        ("params.lr != '0.01'", &["r2"]),
        ("params.lr IS NULL", &["r4", "r5"]),
        ("params.lr IS NOT NULL", &["r3", "r2", "r1"]),
        ("tags.team = 'vision'", &["r2"]),
        ("tags.team IS NULL", &["r3", "r5"]),
        ("tags.team IS NOT NULL", &["r2", "r4", "r1"]),
        ("tags.note = 'it''s'", &["r3"]),
        (r"tags.note = 'C:\data\'", &["r5"]),
        ("tags.`mlflow.runName` = 'alpha'", &["r1"]),
        // LIKE is case-sensitive, ILIKE is not; `\` escapes a wildcard.
        ("params.model LIKE 'Res%'", &["r1"]),
        ("params.model LIKE 'res%'", &["r2", "r4", "r5"]),
        ("params.model ILIKE 'RES%'", &["r2", "r4", "r1", "r5"]),
        ("params.model LIKE '%net'", &["r3", "r2", "r4", "r5"]),
        ("params.model LIKE 'res_net'", &["r4", "r5"]),
        (r"params.model LIKE 'res\_net'", &["r4"]),
        (r"params.model LIKE 'VGG\%%'", &["r3"]),
        ("params.model LIKE 'VGG%'", &["r3"]),
        ("tags.pattern LIKE 'a*b?[c]'", &["r1"]),
        ("tags.pattern LIKE 'a%b_c'", &["r2"]),
        ("tags.team ILIKE 'VISION'", &["r2", "r1"]),
        ("tags.team LIKE 'Vision'", &["r1"]),
        (r"tags.note LIKE 'C:\\data\\'", &["r5"]),
        // A trailing lone backslash is literal (PostgreSQL would reject the raw pattern).
        (r"tags.note LIKE 'C:%\'", &["r5"]),
        // Attributes.
        ("run_id IN ('r1', 'r3', 'nope')", &["r3", "r1"]),
        ("run_id NOT IN ('r1', 'r3')", &["r2", "r4", "r5"]),
        ("attributes.run_id = 'r4'", &["r4"]),
        ("attributes.status = 'FINISHED'", &["r4", "r1"]),
        ("status != 'FINISHED'", &["r3", "r2", "r5"]),
        ("status LIKE 'F%'", &["r3", "r4", "r1"]),
        ("run_name LIKE 'B%'", &["r2"]),
        ("run_name LIKE 'b%'", &[]),
        ("run_name ILIKE 'b%'", &["r2"]),
        ("`Run Name` = 'gamma'", &["r3"]),
        ("user_id = 'alice'", &["r3", "r1"]),
        ("artifact_uri LIKE 's3://%'", &["r3", "r2", "r4", "r1"]),
        ("start_time >= 1000 AND start_time < 3000", &["r2", "r4", "r1"]),
        ("created > 2000", &["r3"]),
        ("Created = 2000", &["r2", "r4"]),
        ("start_time > 1999.5", &["r3", "r2", "r4"]),
        ("end_time > 1000", &["r3", "r4", "r1"]),
        ("end_time != 2000", &["r3", "r4", "r5"]),
        // Datasets: any input of the run; inputs without a context never match on context.
        ("datasets.name = 'train-set'", &["r2", "r1"]),
        ("datasets.digest IN ('def')", &["r3", "r1"]),
        ("datasets.name ILIKE 'EVAL%'", &["r3", "r1"]),
        ("datasets.name LIKE 'EVAL%'", &[]),
        ("datasets.context = 'eval'", &["r3", "r1"]),
        ("datasets.context != 'training'", &["r3", "r1"]),
        ("datasets.context LIKE 'train%'", &["r1"]),
        ("datasets.context NOT IN ('eval')", &["r1"]),
        ("datasets.context = 'eval' AND datasets.name = 'train-set'", &["r1"]),
    ];
    for (filter, expected) in cases {
        let found = search_runs(&db.store, filter, &[]).await;
        assert_eq!(found, *expected, "filter {filter:?}");
    }
}

async fn run_orderings_put_missing_values_last(db: TestDb) {
    seed(&db.store).await;
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["r3", "r2", "r4", "r1", "r5"]),
        // Real values, then NaN, then runs without the metric, in both directions.
        (&["metrics.acc DESC"], &["r1", "r4", "r2", "r3", "r5"]),
        (&["metrics.acc ASC"], &["r2", "r4", "r1", "r3", "r5"]),
        (&["metrics.loss"], &["r1", "r2", "r3", "r4", "r5"]),
        (&["metrics.loss DESC"], &["r2", "r1", "r3", "r4", "r5"]),
        (&["metrics.nothing DESC"], &["r3", "r2", "r4", "r1", "r5"]),
        (&["params.lr DESC"], &["r2", "r3", "r1", "r4", "r5"]),
        (&["params.lr ASC"], &["r3", "r1", "r2", "r4", "r5"]),
        // Byte order: upper case sorts before lower case.
        (&["tags.team"], &["r1", "r4", "r2", "r3", "r5"]),
        (&["tags.team DESC"], &["r2", "r4", "r1", "r3", "r5"]),
        // Ordering by start_time drops the start_time tie-breaker: r2 and r4 tie on run_uuid.
        (&["attributes.start_time ASC"], &["r5", "r1", "r2", "r4", "r3"]),
        (&["created DESC"], &["r3", "r2", "r4", "r1", "r5"]),
        (&["end_time DESC"], &["r4", "r3", "r1", "r5", "r2"]),
        (&["end_time ASC"], &["r5", "r1", "r3", "r4", "r2"]),
        (&["run_name"], &["r2", "r1", "r4", "r5", "r3"]),
        (&["status DESC", "metrics.acc"], &["r2", "r5", "r4", "r1", "r3"]),
        (&["user_id", "run_id DESC"], &["r3", "r1", "r5", "r2", "r4"]),
    ];
    for (order_by, expected) in cases {
        let found = search_runs(&db.store, "", order_by).await;
        assert_eq!(found, *expected, "order_by {order_by:?}");
    }
}

async fn filters_and_orderings_combine(db: TestDb) {
    seed(&db.store).await;
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("metrics.acc > 0", &["metrics.acc DESC"], &["r1", "r4", "r2"]),
        ("params.model ILIKE 'res%' AND tags.team IS NOT NULL", &["tags.team DESC"], &["r2", "r4", "r1"]),
        ("run_id IN ('r1', 'r2', 'r5')", &["params.lr", "end_time DESC"], &["r1", "r2", "r5"]),
        ("status = 'FINISHED'", &["metrics.loss DESC"], &["r1", "r4"]),
    ];
    for (filter, order_by, expected) in cases {
        let found = search_runs(&db.store, filter, order_by).await;
        assert_eq!(found, *expected, "filter {filter:?}, order_by {order_by:?}");
    }
}

async fn experiment_filters_select_mlflow_matches(db: TestDb) {
    seed(&db.store).await;
    let cases: &[(&str, &[i64])] = &[
        ("", &[2, 3, 1, 0]),
        ("name = 'exp-a'", &[1]),
        ("name != 'exp-a'", &[2, 3, 0]),
        ("name LIKE 'exp%'", &[1]),
        ("name ILIKE 'exp%'", &[2, 1]),
        ("attribute.name LIKE '%t%'", &[3, 0]),
        ("tags.team = 'vision'", &[1]),
        ("tags.team ILIKE 'VISION'", &[2, 1]),
        ("tags.team != 'vision'", &[2]),
        ("tags.team IS NULL", &[3, 0]),
        ("tags.team IS NOT NULL", &[2, 1]),
        ("experiment_id = '1'", &[1]),
        ("experiment_id IN ('1', '3', '99')", &[3, 1]),
        ("experiment_id NOT IN ('1', '3')", &[2, 0]),
        ("experiment_id != '0'", &[2, 3, 1]),
        ("creation_time >= 200", &[2, 3]),
        ("creation_time > 50 AND last_update_time < 400", &[2, 3]),
        ("last_update_time <= 300", &[2, 3, 0]),
    ];
    for (filter, expected) in cases {
        let found = search_experiments(&db.store, filter, &[]).await;
        assert_eq!(found, *expected, "filter {filter:?}");
    }
}

async fn experiment_orderings_end_with_experiment_id(db: TestDb) {
    seed(&db.store).await;
    let cases: &[(&[&str], &[i64])] = &[
        (&[], &[2, 3, 1, 0]),
        (&["name"], &[0, 2, 1, 3]),
        (&["name DESC"], &[3, 1, 2, 0]),
        // Ties on creation_time fall back to experiment_id DESC, as in MLflow.
        (&["creation_time ASC"], &[0, 1, 3, 2]),
        (&["creation_time DESC"], &[3, 2, 1, 0]),
        (&["last_update_time DESC"], &[1, 2, 3, 0]),
        (&["experiment_id"], &[0, 1, 2, 3]),
        (&["creation_time DESC", "experiment_id ASC"], &[2, 3, 1, 0]),
    ];
    for (order_by, expected) in cases {
        let found = search_experiments(&db.store, "", order_by).await;
        assert_eq!(found, *expected, "order_by {order_by:?}");
    }
}
