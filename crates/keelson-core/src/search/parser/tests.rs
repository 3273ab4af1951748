//! Table-driven parser tests. The accepted and rejected cases were checked against MLflow 3.17.2's
//! `SearchUtils.parse_search_filter` / `SearchExperimentsUtils` (plus the comparator checks its
//! SQL store makes); the deliberate differences are marked "differs from MLflow".

use super::*;

fn metric(key: &str, op: CompareOp, value: f64) -> RunComparison {
    RunComparison { key: RunKey::Metric(key.into()), op, value: FilterValue::Number(value) }
}

fn param(key: &str, op: CompareOp, value: &str) -> RunComparison {
    RunComparison { key: RunKey::Param(key.into()), op, value: FilterValue::String(value.into()) }
}

fn tag(key: &str, op: CompareOp, value: &str) -> RunComparison {
    RunComparison { key: RunKey::Tag(key.into()), op, value: FilterValue::String(value.into()) }
}

fn attr(attribute: RunAttribute, op: CompareOp, value: FilterValue) -> RunComparison {
    RunComparison { key: RunKey::Attribute(attribute), op, value }
}

fn dataset(field: DatasetField, op: CompareOp, value: FilterValue) -> RunComparison {
    RunComparison { key: RunKey::Dataset(field), op, value }
}

fn null_check(key: RunKey, op: CompareOp) -> RunComparison {
    RunComparison { key, op, value: FilterValue::None }
}

fn s(value: &str) -> FilterValue {
    FilterValue::String(value.into())
}

fn list(values: &[&str]) -> FilterValue {
    FilterValue::List(values.iter().map(|v| v.to_string()).collect())
}

fn n(value: f64) -> FilterValue {
    FilterValue::Number(value)
}

use CompareOp::*;

#[test]
fn valid_run_filters() {
    let cases: Vec<(&str, Vec<RunComparison>)> = vec![
        ("", vec![]),
        ("   \t\n", vec![]),
        ("metrics.acc > 0.9", vec![metric("acc", Gt, 0.9)]),
        ("metric.acc>=1", vec![metric("acc", Ge, 1.0)]),
        ("metrics.loss < -1.5E-3", vec![metric("loss", Lt, -1.5e-3)]),
        ("metrics.loss <= 1e5", vec![metric("loss", Le, 1e5)]),
        ("metrics.a = .5", vec![metric("a", Eq, 0.5)]),
        ("metrics.a != 5.", vec![metric("a", Ne, 5.0)]),
        ("metrics.a = 01", vec![metric("a", Eq, 1.0)]),
        ("metrics.a = -.5", vec![metric("a", Eq, -0.5)]),
        ("metrics.a.b > 1", vec![metric("a.b", Gt, 1.0)]),
        ("metrics.1st > 1", vec![metric("1st", Gt, 1.0)]),
        ("metrics.`a-b` > 1", vec![metric("a-b", Gt, 1.0)]),
        ("metrics.\"a b\" > 1", vec![metric("a b", Gt, 1.0)]),
        ("metrics.'a b' > 1", vec![metric("a b", Gt, 1.0)]),
        ("metrics.`val/loss` < 2", vec![metric("val/loss", Lt, 2.0)]),
        ("metrics.ünï > 1", vec![metric("ünï", Gt, 1.0)]),
        ("metrics.`` > 1", vec![metric("", Gt, 1.0)]),
        ("`metrics`.a > 1", vec![metric("a", Gt, 1.0)]),
        ("params.lr = '0.01'", vec![param("lr", Eq, "0.01")]),
        ("param.lr='0.01'", vec![param("lr", Eq, "0.01")]),
        ("parameters.lr != \"x y\"", vec![param("lr", Ne, "x y")]),
        ("parameter.`my param` LIKE '%a_'", vec![param("my param", Like, "%a_")]),
        ("params.a ilike 'X%'", vec![param("a", ILike, "X%")]),
        ("params.a = 'it''s'", vec![param("a", Eq, "it's")]),
        ("params.a = \"say \"\"hi\"\"\"", vec![param("a", Eq, "say \"hi\"")]),
        ("params.dir = 'C:\\data\\'", vec![param("dir", Eq, "C:\\data\\")]),
        ("params.a = 'ünï'", vec![param("a", Eq, "ünï")]),
        ("params.a = ''", vec![param("a", Eq, "")]),
        ("tags.mlflow.runName = 'x'", vec![tag("mlflow.runName", Eq, "x")]),
        ("tags.\"mlflow.runName\" = 'x'", vec![tag("mlflow.runName", Eq, "x")]),
        ("tag.`a.b c` != 'x'", vec![tag("a.b c", Ne, "x")]),
        ("tags.a LiKe 'x%'", vec![tag("a", Like, "x%")]),
        ("params.a IS NULL", vec![null_check(RunKey::Param("a".into()), IsNull)]),
        ("params.a is not null", vec![null_check(RunKey::Param("a".into()), IsNotNull)]),
        ("tags.`x y` IS NOT NULL", vec![null_check(RunKey::Tag("x y".into()), IsNotNull)]),
        ("attributes.status = 'FINISHED'", vec![attr(RunAttribute::Status, Eq, s("FINISHED"))]),
        ("attribute.user_id != 'bob'", vec![attr(RunAttribute::UserId, Ne, s("bob"))]),
        ("attr.artifact_uri LIKE 's3://%'", vec![attr(RunAttribute::ArtifactUri, Like, s("s3://%"))]),
        ("run.run_name ILIKE '%Big%'", vec![attr(RunAttribute::RunName, ILike, s("%Big%"))]),
        ("status = \"RUNNING\"", vec![attr(RunAttribute::Status, Eq, s("RUNNING"))]),
        ("run_name = 'x'", vec![attr(RunAttribute::RunName, Eq, s("x"))]),
        ("`run name` = 'x'", vec![attr(RunAttribute::RunName, Eq, s("x"))]),
        ("\"Run name\" = 'x'", vec![attr(RunAttribute::RunName, Eq, s("x"))]),
        ("attributes.`Run Name` = 'x'", vec![attr(RunAttribute::RunName, Eq, s("x"))]),
        ("run_id IN ('a', 'b')", vec![attr(RunAttribute::RunId, In, list(&["a", "b"]))]),
        ("attributes.run_id in (\"a\")", vec![attr(RunAttribute::RunId, In, list(&["a"]))]),
        ("run_id NOT IN ('a','b',)", vec![attr(RunAttribute::RunId, NotIn, list(&["a", "b"]))]),
        ("run_id not  in ('a')", vec![attr(RunAttribute::RunId, NotIn, list(&["a"]))]),
        ("start_time > 1700000000000", vec![attr(RunAttribute::StartTime, Gt, n(1_700_000_000_000.0))]),
        ("attributes.start_time >= 5.5", vec![attr(RunAttribute::StartTime, Ge, n(5.5))]),
        ("created < 5", vec![attr(RunAttribute::StartTime, Lt, n(5.0))]),
        ("Created != -1", vec![attr(RunAttribute::StartTime, Ne, n(-1.0))]),
        ("end_time <= 1e3", vec![attr(RunAttribute::EndTime, Le, n(1000.0))]),
        ("datasets.name = 'train'", vec![dataset(DatasetField::Name, Eq, s("train"))]),
        ("dataset.digest != 'abc'", vec![dataset(DatasetField::Digest, Ne, s("abc"))]),
        (
            "datasets.context IN ('training', 'eval')",
            vec![dataset(DatasetField::Context, In, list(&["training", "eval"]))],
        ),
        ("datasets.name NOT IN ('a')", vec![dataset(DatasetField::Name, NotIn, list(&["a"]))]),
        ("datasets.context ILIKE 'TRAIN%'", vec![dataset(DatasetField::Context, ILike, s("TRAIN%"))]),
        (
            "metrics.acc >= 1 AND params.b = 'x' and tags.c != \"y\"",
            vec![metric("acc", Ge, 1.0), param("b", Eq, "x"), tag("c", Ne, "y")],
        ),
        ("tags.x IS NULL AND metrics.a > 1", vec![null_check(RunKey::Tag("x".into()), IsNull), metric("a", Gt, 1.0)]),
        // Tolerated because MLflow (through sqlparse) tolerates them.
        ("AND metrics.a > 1", vec![metric("a", Gt, 1.0)]),
        ("metrics.a > 1 AND", vec![metric("a", Gt, 1.0)]),
        ("metrics.a > 1 AND AND metrics.b > 2", vec![metric("a", Gt, 1.0), metric("b", Gt, 2.0)]),
        ("metrics.a > 1 metrics.b > 2", vec![metric("a", Gt, 1.0), metric("b", Gt, 2.0)]),
    ];
    for (input, expected) in cases {
        match parse_run_filter(input) {
            Ok(filter) => assert_eq!(filter.clauses, expected, "{input:?}"),
            Err(err) => panic!("{input:?} should parse: {err}"),
        }
    }
}

#[test]
fn invalid_run_filters() {
    // (filter, substrings the message must contain)
    let cases: &[(&str, &[&str])] = &[
        ("METRICS.a > 1", &["invalid entity type 'METRICS'", "metric, parameter, tag"]),
        ("foo.a = 'x'", &["invalid entity type 'foo'"]),
        ("lifecycle_stage = 'active'", &["invalid attribute key 'lifecycle_stage'", "run_id, run_name"]),
        ("attributes.experiment_id = '1'", &["invalid attribute key 'experiment_id'"]),
        ("dataset.foo = 'x'", &["invalid dataset key 'foo'", "name, digest, context"]),
        ("metrics.a > 1 OR metrics.b > 2", &["'OR' at position 15 is not supported", "AND only"]),
        ("metrics.a > 1 and not metrics.b > 2", &["'not'", "not supported"]),
        ("(metrics.a > 1)", &["unexpected '('", "IN or NOT IN"]),
        ("metrics.a > 1;", &["unexpected character ';'"]),
        ("metrics.a-b > 1", &["unexpected character '-'"]),
        ("metrics.a > '5'", &["expected a numeric value for metric 'metrics.a', found '5'"]),
        ("metrics.a > abc", &["expected a numeric value for metric 'metrics.a', found abc"]),
        ("metrics.a > +5", &["unexpected character '+'"]),
        ("metrics.a > 1_000", &["invalid number '1_000'"]),
        ("metrics.a > 0x10", &["invalid number '0x10'"]),
        ("metrics.a > 1e", &["invalid number '1e'"]),
        ("metrics.a LIKE 'x'", &["invalid comparator 'LIKE' for metric 'metrics.a'", "=, !=, <, <=, >, >="]),
        ("metrics.a IN ('1')", &["invalid comparator 'IN' for metric"]),
        ("metrics.a IS NULL", &["IS NULL / IS NOT NULL is only supported for tags and params", "metric 'metrics.a'"]),
        ("metrics.a <> 1", &["invalid comparator '<>'", "use '!='"]),
        ("metrics.a == 1", &["invalid comparator '=='", "use '='"]),
        ("metrics.a", &["expected a comparator after 'metrics.a'", "end of the filter"]),
        ("metrics.a >", &["expected a value after 'metrics.a >'"]),
        ("metrics.a 5", &["expected a comparator", "found '5'"]),
        ("params.a = abc", &["expected a quoted string value for parameter 'params.a' (e.g. 'my-value'), found abc"]),
        ("params.a = `abc`", &["found `abc`", "backticks quote keys"]),
        ("params.a = 5", &["expected a quoted string value for parameter", "found 5"]),
        ("params.a = NULL", &["expected a quoted string value", "found NULL"]),
        (
            "params.a > 'x'",
            &["invalid comparator '>' for parameter 'params.a'", "=, !=, LIKE, ILIKE, IS NULL, IS NOT NULL"],
        ),
        ("params.a IN ('x')", &["invalid comparator 'IN' for parameter"]),
        ("tags.a NOT LIKE 'x'", &["invalid comparator 'NOT LIKE'", "NOT IN and IS NOT NULL"]),
        ("params.a IS 'x'", &["expected NULL after 'params.a IS', found 'x'"]),
        ("params.a IS NOT", &["expected NULL after 'params.a IS NOT'", "end of the filter"]),
        ("params.a = 'x' 'y'", &["expected an identifier", "found 'y'"]),
        ("params.a = 'open", &["unterminated quoted string 'open"]),
        ("params.`open = 'x'", &["unterminated quoted identifier"]),
        ("params.a ≠ 'x'", &["unexpected character '≠' at position 10"]),
        ("status IN ('a')", &["'status IN': only run_id supports comparison with a list"]),
        ("run_name NOT IN ('a')", &["only run_id supports"]),
        ("run_id IN ()", &["expected a non-empty list", "empty list"]),
        ("run_id IN (1, 2)", &["expected a quoted string, found '1'"]),
        ("run_id IN ('a', b)", &["expected a quoted string, found 'b'"]),
        ("run_id IN ('a' 'b')", &["expected ',' or ')', found 'b'"]),
        ("run_id IN ('a'", &["unterminated list after 'run_id IN'"]),
        ("run_id IN 'a'", &["expected a parenthesised list", "found 'a'"]),
        ("run_id = ('a')", &["a list of values needs IN or NOT IN"]),
        ("run_id = 1", &["expected a quoted string value for attribute 'run_id'", "found 1"]),
        ("run_id > 'a'", &["invalid comparator '>' for attribute 'run_id'", "=, !=, LIKE, ILIKE, IN, NOT IN"]),
        ("user_id > 'a'", &["invalid comparator '>' for attribute 'user_id'; expected one of =, !=, LIKE, ILIKE"]),
        (
            "attributes.status IS NULL",
            &["IS NULL / IS NOT NULL is only supported for tags and params", "attribute 'attributes.status'"],
        ),
        ("end_time IS NULL", &["only supported for tags and params"]),
        ("start_time > '5'", &["expected a numeric value for numeric attribute 'start_time', found '5'"]),
        ("start_time LIKE '5'", &["invalid comparator 'LIKE' for numeric attribute"]),
        ("start_time IN ('5')", &["invalid comparator 'IN' for numeric attribute"]),
        ("datasets.name > 'x'", &["invalid comparator '>' for dataset attribute"]),
        ("datasets.name = 5", &["expected a quoted string value for dataset attribute 'datasets.name'"]),
        ("datasets.context IS NULL", &["only supported for tags and params"]),
        ("'params'.a = 'x'", &["unexpected character '.' at position 9"]),
        ("'params' = 'x'", &["expected an identifier", "found 'params'"]),
        ("= 'x'", &["expected an identifier", "found '='"]),
        ("metrics.a > 1 AND 5", &["expected an identifier", "found '5'"]),
    ];
    for (input, needles) in cases {
        let err = match parse_run_filter(input) {
            Ok(filter) => panic!("{input:?} should be rejected, parsed as {filter:?}"),
            Err(err) => err.0,
        };
        for needle in *needles {
            assert!(err.contains(needle), "{input:?}: message {err:?} lacks {needle:?}");
        }
        let first = err.chars().next().unwrap_or(' ');
        assert!(
            !first.is_uppercase() || err.starts_with("IS ") || err.starts_with("NOT "),
            "{input:?}: message should start in lower case: {err:?}"
        );
    }
}

#[test]
fn valid_run_order_by() {
    let cases: Vec<(&str, RunKey, bool)> = vec![
        ("metrics.acc DESC", RunKey::Metric("acc".into()), false),
        ("metrics.acc desc", RunKey::Metric("acc".into()), false),
        ("metric.acc ASC", RunKey::Metric("acc".into()), true),
        ("metrics.acc", RunKey::Metric("acc".into()), true),
        ("metrics.a.b aSc", RunKey::Metric("a.b".into()), true),
        ("metrics.`a-b`", RunKey::Metric("a-b".into()), true),
        ("attributes.start_time", RunKey::Attribute(RunAttribute::StartTime), true),
        ("params.`my param` ASC", RunKey::Param("my param".into()), true),
        ("params.\"my param\" DESC", RunKey::Param("my param".into()), false),
        ("params.'my param' DESC", RunKey::Param("my param".into()), false),
        ("tags.mlflow.runName", RunKey::Tag("mlflow.runName".into()), true),
        ("run_name", RunKey::Attribute(RunAttribute::RunName), true),
        ("created", RunKey::Attribute(RunAttribute::StartTime), true),
        ("Created DESC", RunKey::Attribute(RunAttribute::StartTime), false),
        ("status", RunKey::Attribute(RunAttribute::Status), true),
        ("attr.run_id", RunKey::Attribute(RunAttribute::RunId), true),
        ("end_time DESC", RunKey::Attribute(RunAttribute::EndTime), false),
        // Differs from MLflow, which rejects surrounding whitespace.
        (" metrics.acc  DESC ", RunKey::Metric("acc".into()), false),
    ];
    for (input, key, ascending) in cases {
        match parse_run_order_by(input) {
            Ok(order) => assert_eq!(order, RunOrderBy { key, ascending }, "{input:?}"),
            Err(err) => panic!("{input:?} should parse: {err}"),
        }
    }
}

#[test]
fn invalid_run_order_by() {
    let cases: &[(&str, &[&str])] = &[
        ("", &["invalid order_by clause ''", "empty"]),
        ("metrics.acc DESCENDING", &["invalid ordering key 'DESCENDING'", "ASC or DESC"]),
        ("metrics.acc DESC ASC", &["unexpected 'ASC'", "one key and an optional ASC or DESC"]),
        ("metrics.acc,metrics.b", &["unexpected ','", "its own order_by entry"]),
        ("`Run Name`", &["invalid attribute key 'Run Name'"]),
        ("lifecycle_stage", &["invalid attribute key 'lifecycle_stage'"]),
        ("experiment_id", &["invalid attribute key 'experiment_id'"]),
        ("timestamp", &["invalid attribute key 'timestamp'"]),
        ("datasets.name", &["cannot be ordered by dataset fields"]),
        ("foo.bar", &["invalid entity type 'foo'"]),
        ("'metrics.acc'", &["invalid order_by clause", "expected an identifier"]),
        ("metrics.acc > 1", &["invalid ordering key '>'"]),
    ];
    for (input, needles) in cases {
        let err = match parse_run_order_by(input) {
            Ok(order) => panic!("{input:?} should be rejected, parsed as {order:?}"),
            Err(err) => err.0,
        };
        for needle in *needles {
            assert!(err.contains(needle), "{input:?}: message {err:?} lacks {needle:?}");
        }
    }
}

fn exp(key: ExperimentKey, op: CompareOp, value: FilterValue) -> ExperimentComparison {
    ExperimentComparison { key, op, value }
}

#[test]
fn valid_experiment_filters() {
    use ExperimentKey as K;
    let cases: Vec<(&str, Vec<ExperimentComparison>)> = vec![
        ("", vec![]),
        (" ", vec![]),
        ("name = 'x'", vec![exp(K::Name, Eq, s("x"))]),
        ("attribute.name != \"x\"", vec![exp(K::Name, Ne, s("x"))]),
        ("name LIKE 'x%'", vec![exp(K::Name, Like, s("x%"))]),
        ("name ilike 'X%'", vec![exp(K::Name, ILike, s("X%"))]),
        ("tags.a = 'x'", vec![exp(K::Tag("a".into()), Eq, s("x"))]),
        ("tag.`a b` LIKE '%'", vec![exp(K::Tag("a b".into()), Like, s("%"))]),
        ("tags.a IS NULL", vec![exp(K::Tag("a".into()), IsNull, FilterValue::None)]),
        ("tags.a IS NOT NULL", vec![exp(K::Tag("a".into()), IsNotNull, FilterValue::None)]),
        ("creation_time > 5", vec![exp(K::CreationTime, Gt, n(5.0))]),
        ("last_update_time <= 10", vec![exp(K::LastUpdateTime, Le, n(10.0))]),
        ("experiment_id = '1'", vec![exp(K::ExperimentId, Eq, s("1"))]),
        ("experiment_id IN ('1', '2')", vec![exp(K::ExperimentId, In, list(&["1", "2"]))]),
        ("experiment_id NOT IN ('0')", vec![exp(K::ExperimentId, NotIn, list(&["0"]))]),
        (
            "name = 'a' AND tags.b != 'c' and creation_time >= 0",
            vec![exp(K::Name, Eq, s("a")), exp(K::Tag("b".into()), Ne, s("c")), exp(K::CreationTime, Ge, n(0.0))],
        ),
    ];
    for (input, expected) in cases {
        match parse_experiment_filter(input) {
            Ok(filter) => assert_eq!(filter.clauses, expected, "{input:?}"),
            Err(err) => panic!("{input:?} should parse: {err}"),
        }
    }
}

#[test]
fn invalid_experiment_filters() {
    let cases: &[(&str, &[&str])] = &[
        ("attributes.name = 'x'", &["invalid entity type 'attributes'", "attribute, tag, tags"]),
        ("attr.name = 'x'", &["invalid entity type 'attr'"]),
        ("metrics.a > 1", &["invalid entity type 'metrics'"]),
        ("lifecycle_stage = 'active'", &["invalid attribute key 'lifecycle_stage'", "name, experiment_id"]),
        ("name IN ('x')", &["only experiment_id supports comparison with a list"]),
        ("name > 'x'", &["invalid comparator '>' for attribute 'name'"]),
        ("name IS NULL", &["IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"]),
        ("name = 5", &["expected a quoted string value for attribute 'name'"]),
        ("tags.a IN ('x')", &["invalid comparator 'IN' for tag"]),
        ("tags.a > 'x'", &["invalid comparator '>' for tag"]),
        ("creation_time > '5'", &["expected a numeric value for numeric attribute 'creation_time', found '5'"]),
        ("creation_time > 5.0", &["invalid value 5.0 for numeric attribute 'creation_time'", "integer"]),
        ("creation_time LIKE 5", &["invalid comparator 'LIKE' for numeric attribute"]),
        ("experiment_id = 1", &["expected a quoted string value for attribute 'experiment_id'"]),
        ("experiment_id > '1'", &["invalid comparator '>' for attribute 'experiment_id'"]),
        ("experiment_id = 'abc'", &["invalid experiment ID 'abc'", "valid integer"]),
        ("experiment_id IN ('1', 'a')", &["invalid experiment ID 'a'"]),
        ("name = 'x' OR name = 'y'", &["'OR'", "AND only"]),
    ];
    for (input, needles) in cases {
        let err = match parse_experiment_filter(input) {
            Ok(filter) => panic!("{input:?} should be rejected, parsed as {filter:?}"),
            Err(err) => err.0,
        };
        for needle in *needles {
            assert!(err.contains(needle), "{input:?}: message {err:?} lacks {needle:?}");
        }
    }
}

#[test]
fn experiment_order_by() {
    use ExperimentKey as K;
    let valid: Vec<(&str, ExperimentKey, bool)> = vec![
        ("name", K::Name, true),
        ("name DESC", K::Name, false),
        ("creation_time asc", K::CreationTime, true),
        ("last_update_time", K::LastUpdateTime, true),
        ("experiment_id DESC", K::ExperimentId, false),
        ("attribute.name", K::Name, true),
    ];
    for (input, key, ascending) in valid {
        match parse_experiment_order_by(input) {
            Ok(order) => assert_eq!(order, ExperimentOrderBy { key, ascending }, "{input:?}"),
            Err(err) => panic!("{input:?} should parse: {err}"),
        }
    }
    let invalid: &[(&str, &str)] = &[
        ("tags.a", "experiments cannot be ordered by tags"),
        ("attributes.name", "invalid entity type 'attributes'"),
        ("foo", "invalid attribute key 'foo'"),
        ("name DOWN", "invalid ordering key 'DOWN'"),
        ("", "empty"),
    ];
    for (input, needle) in invalid {
        let err = match parse_experiment_order_by(input) {
            Ok(order) => panic!("{input:?} should be rejected, parsed as {order:?}"),
            Err(err) => err.0,
        };
        assert!(err.contains(needle), "{input:?}: message {err:?} lacks {needle:?}");
    }
}

#[test]
fn nothing_from_the_input_becomes_a_column_name() {
    // Keys with SQL in them are just keys; the store binds them as values.
    let filter = parse_run_filter("params.`x' OR 1=1 --` = 'y'").unwrap();
    assert_eq!(filter.clauses, vec![param("x' OR 1=1 --", Eq, "y")]);
}
