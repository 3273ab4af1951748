//! MLflow's input rules (mlflow/utils/validation.py), with its messages, so clients and users
//! see the same errors from Keelson as from MLflow.

use crate::TrackingError;
use keelson_core::tracking::limits::*;
use keelson_core::tracking::{DatasetInput, Metric, Param, Tag};

fn invalid(message: String) -> TrackingError {
    TrackingError::Invalid(message)
}

const BAD_CHARACTERS: &str =
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).";

/// Param, metric and tag names: word characters, `/ . - : space`, and nothing that a file system
/// would resolve to another name.
pub fn validate_name(kind: &str, path: &str, name: &str) -> Result<(), TrackingError> {
    if name.is_empty() {
        return Err(invalid(format!("Missing value for required parameter '{path}'. {kind} name cannot be empty.")));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':');
    if !name.chars().all(allowed) {
        return Err(invalid(format!("Invalid value \"{name}\" for parameter '{path}' supplied: {BAD_CHARACTERS}")));
    }
    if !is_normalised_path(name) {
        return Err(invalid(format!(
            "Invalid value \"{name}\" for parameter '{path}' supplied: Names may be treated as files in certain \
             cases, and must not resolve to other names when treated as such."
        )));
    }
    if name.chars().count() > MAX_ENTITY_KEY_LENGTH {
        return Err(invalid(format!("'{path}' exceeds the maximum length of {MAX_ENTITY_KEY_LENGTH} characters")));
    }
    Ok(())
}

/// Mirrors `posixpath.normpath(name) == name` and not `.`, `..…` or absolute.
fn is_normalised_path(name: &str) -> bool {
    if name.starts_with('/') || name == "." || name.starts_with("..") {
        return false;
    }
    let segments: Vec<&str> = name.split('/').collect();
    !segments.iter().enumerate().any(|(i, s)| {
        *s == "." || *s == ".." || (s.is_empty() && i != segments.len() - 1) || (s.is_empty() && segments.len() > 1)
    })
}

fn check_length(what: &str, limit: usize, value: &str) -> Result<(), TrackingError> {
    if value.chars().count() > limit {
        return Err(invalid(format!("'{what}' exceeds the maximum length of {limit} characters")));
    }
    Ok(())
}

pub fn validate_metric(metric: &Metric, path: &str) -> Result<(), TrackingError> {
    validate_name("Metric", &join(path, "key"), &metric.key)?;
    if metric.timestamp < 0 {
        return Err(invalid(format!(
            "Invalid value {} for parameter '{}' supplied: metric '{}' (value={}). Timestamp must be a nonnegative \
             long (64-bit integer) ",
            metric.timestamp,
            join(path, "timestamp"),
            metric.key,
            metric.value
        )));
    }
    Ok(())
}

pub fn validate_param(param: &Param, path: &str) -> Result<(), TrackingError> {
    validate_name("Param", &join(path, "key"), &param.key)?;
    check_length(&join(path, "value"), MAX_PARAM_VAL_LENGTH, &param.value)
}

pub fn validate_tag(tag: &Tag, path: &str) -> Result<(), TrackingError> {
    validate_name("Tag", &join(path, "key"), &tag.key)?;
    check_length(&join(path, "value"), MAX_TAG_VAL_LENGTH, &tag.value)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// LogBatch: MLflow's per-call limits, then every entity.
pub fn validate_batch(metrics: &[Metric], params: &[Param], tags: &[Tag]) -> Result<(), TrackingError> {
    let limit = |name: &str, limit: usize, count: usize| {
        if count > limit {
            Err(invalid(format!(
                "A batch logging request can contain at most {limit} {name}. Got {count} {name}. Please split up \
                 {name} across multiple requests and try again."
            )))
        } else {
            Ok(())
        }
    };
    limit("metrics", MAX_METRICS_PER_BATCH, metrics.len())?;
    limit("params", MAX_PARAMS_TAGS_PER_BATCH, params.len())?;
    limit("tags", MAX_PARAMS_TAGS_PER_BATCH, tags.len())?;
    let total = metrics.len() + params.len() + tags.len();
    if total > MAX_ENTITIES_PER_BATCH {
        return Err(invalid(format!(
            "A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} total entities (metrics, params, \
             and tags). Got {total} entities."
        )));
    }
    for (i, metric) in metrics.iter().enumerate() {
        validate_metric(metric, &format!("metrics[{i}]"))?;
    }
    for (i, param) in params.iter().enumerate() {
        validate_param(param, &format!("params[{i}]"))?;
    }
    for (i, tag) in tags.iter().enumerate() {
        validate_tag(tag, &format!("tags[{i}]"))?;
    }
    Ok(())
}

pub fn validate_experiment_name(name: &str) -> Result<(), TrackingError> {
    if name.trim().is_empty() {
        return Err(invalid("Invalid experiment name: ''. Experiment name must be a non-empty string.".into()));
    }
    check_length("name", MAX_EXPERIMENT_NAME_LENGTH, name)
}

pub fn validate_dataset_inputs(inputs: &[DatasetInput]) -> Result<(), TrackingError> {
    for input in inputs {
        let d = &input.dataset;
        check_length("name", MAX_DATASET_NAME_SIZE, &d.name)?;
        check_length("digest", MAX_DATASET_DIGEST_SIZE, &d.digest)?;
        check_length("source", MAX_DATASET_SOURCE_SIZE, &d.source)?;
        check_length("schema", MAX_DATASET_SCHEMA_SIZE, d.schema.as_deref().unwrap_or(""))?;
        check_length("profile", MAX_DATASET_PROFILE_SIZE, d.profile.as_deref().unwrap_or(""))?;
        for tag in &input.tags {
            check_length("key", MAX_ENTITY_KEY_LENGTH, &tag.key)?;
            check_length("value", MAX_TAG_VAL_LENGTH, &tag.value)?;
        }
    }
    Ok(())
}

pub fn validate_max_results(max_results: i64, limit: i64) -> Result<(), TrackingError> {
    if max_results <= 0 || max_results > limit {
        return Err(invalid(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be at most {limit}, but got value {max_results}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_mlflow_rules() {
        for good in ["acc", "val/loss", "a.b-c d:e", "ünïcode_1", "x"] {
            assert!(validate_name("Metric", "key", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "dir/",
            "a*b",
            "/abs",
            "..",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            ".",
            "a/./b",
            "tab\there",
            &"k".repeat(251),
        ] {
            assert!(validate_name("Metric", "key", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn batch_limits() {
        let metric = Metric {
            key: "m".into(),
            value: 1.0,
            timestamp: 0,
            step: 0,
            run_id: None,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
        };
        assert!(validate_batch(&vec![metric.clone(); 1000], &[], &[]).is_ok());
        let err = validate_batch(&vec![metric; 1001], &[], &[]).unwrap_err();
        assert!(err.to_string().contains("at most 1000 metrics"));
        let param = Param { key: "p".into(), value: "v".into() };
        assert!(validate_batch(&[], &vec![param; 101], &[]).is_err());
        assert!(validate_batch(&[], &[], &vec![Tag::new("t", "v"); 101]).is_err());
        assert!(validate_param(&Param { key: "p".into(), value: "v".repeat(6001) }, "").is_err());
    }
}
