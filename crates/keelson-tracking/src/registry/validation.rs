//! MLflow's registry input rules (mlflow/utils/validation.py), with its messages.

use crate::TrackingError;
use keelson_core::registry::limits::*;
use keelson_core::tracking::Tag;

fn invalid(message: String) -> TrackingError {
    TrackingError::Invalid(message)
}

pub fn missing_value(path: &str) -> TrackingError {
    invalid(format!("Missing value for required parameter '{path}'."))
}

/// Names cannot be empty, contain `/` or `:`, or resolve to another name as a path.
pub fn validate_model_name(name: &str) -> Result<(), TrackingError> {
    if name.trim().is_empty() {
        return Err(missing_value("name"));
    }
    if name.contains('/') || name.contains(':') {
        return Err(invalid(format!("Invalid model name '{name}'. Names cannot contain '/' or ':'.")));
    }
    if name == "." || name.starts_with("..") {
        return Err(invalid(format!(
            "Invalid value \"{name}\" for parameter 'name' supplied: Names may be treated as files in certain cases, \
             and must not resolve to other names when treated as such."
        )));
    }
    Ok(())
}

pub fn parse_version(version: &str) -> Result<i64, TrackingError> {
    version
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid(format!("Parameter 'version' must be an integer, got '{version}'.")))
}

pub fn validate_alias(alias: &str) -> Result<(), TrackingError> {
    if alias.is_empty() {
        return Err(invalid("Registered model alias name cannot be empty.".into()));
    }
    if !alias.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    if alias.chars().count() > MAX_ALIAS_LENGTH {
        return Err(invalid(format!(
            "'Registered model alias name' exceeds the maximum length of {MAX_ALIAS_LENGTH} characters"
        )));
    }
    Ok(())
}

/// `latest` and `v<digits>` name versions themselves, so they cannot be set as aliases.
pub fn validate_alias_not_reserved(alias: &str) -> Result<(), TrackingError> {
    if alias.eq_ignore_ascii_case("latest") {
        return Err(invalid("'latest' alias name (case insensitive) is reserved.".into()));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V')) && alias.len() > 1 && chars.all(|c| c.is_ascii_digit()) {
        return Err(invalid(format!("Version alias name '{alias}' is reserved.")));
    }
    Ok(())
}

pub fn validate_registry_tag(tag: &Tag) -> Result<(), TrackingError> {
    if tag.key.is_empty() {
        return Err(invalid("Missing value for required parameter 'key'.".into()));
    }
    crate::validation::validate_name("Tag", "key", &tag.key)?;
    if tag.key.chars().count() > MAX_REGISTRY_TAG_KEY_LENGTH {
        return Err(invalid(format!("'key' exceeds the maximum length of {MAX_REGISTRY_TAG_KEY_LENGTH} characters")));
    }
    if tag.value.chars().count() > MAX_REGISTRY_TAG_VALUE_LENGTH {
        return Err(invalid(format!(
            "'value' exceeds the maximum length of {MAX_REGISTRY_TAG_VALUE_LENGTH} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert!(validate_model_name("fraud-detector v2").is_ok());
        assert!(validate_model_name("a/b").is_err());
        assert!(validate_model_name("a:b").is_err());
        assert!(validate_model_name("  ").is_err());
        assert!(validate_alias("champion_1-a").is_ok());
        assert!(validate_alias("bad alias").is_err());
        assert!(validate_alias("").is_err());
        assert!(validate_alias(&"a".repeat(256)).is_err());
        assert!(validate_alias_not_reserved("Latest").is_err());
        assert!(validate_alias_not_reserved("v12").is_err());
        assert!(validate_alias_not_reserved("v").is_ok());
        assert!(validate_alias_not_reserved("v1a").is_ok());
        assert_eq!(parse_version(" 3 ").ok(), Some(3));
        assert!(parse_version("x").is_err());
    }
}
