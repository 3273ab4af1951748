//! Registry filters and orderings, as MLflow's `SearchModelUtils` and `SearchModelVersionUtils`
//! (with its SQL store's checks) accept them:
//! - registered models: `name` (`= != LIKE ILIKE IN NOT IN`) and `tags.<key>` (`= != LIKE ILIKE`);
//!   order by `name`, `timestamp` / `last_updated_timestamp`.
//! - model versions: also `run_id` (with lists), `source_path` and `version_number` (numeric);
//!   order by `name`, `version_number`, `creation_timestamp`, `last_updated_timestamp`.

use super::*;

const TAG_OPS: &[CompareOp] = &[CompareOp::Eq, CompareOp::Ne, CompareOp::Like, CompareOp::ILike];
const NUMERIC_OPS: &[CompareOp] =
    &[CompareOp::Eq, CompareOp::Ne, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge];
const MODEL_ATTRIBUTES: &str = "name";
const VERSION_ATTRIBUTES: &str = "name, run_id, source_path, version_number";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Models,
    Versions,
}

/// Parses a `search_registered_models` filter. An empty or blank string is the empty filter.
pub fn parse_registered_model_filter(filter: &str) -> Result<RegistryFilter, SearchSyntaxError> {
    let clauses = Parser::new(filter)?.conjunction(|parser| parser.registry_comparison(Target::Models))?;
    Ok(RegistryFilter { clauses })
}

/// Parses a `search_model_versions` filter. An empty or blank string is the empty filter.
pub fn parse_model_version_filter(filter: &str) -> Result<RegistryFilter, SearchSyntaxError> {
    let clauses = Parser::new(filter)?.conjunction(|parser| parser.registry_comparison(Target::Versions))?;
    Ok(RegistryFilter { clauses })
}

/// Parses one `search_registered_models` order-by clause such as `name DESC`.
pub fn parse_registered_model_order_by(order_by: &str) -> Result<RegistryOrderBy, SearchSyntaxError> {
    registry_order_by(order_by, Target::Models)
}

/// Parses one `search_model_versions` order-by clause such as `version_number DESC`.
pub fn parse_model_version_order_by(order_by: &str) -> Result<RegistryOrderBy, SearchSyntaxError> {
    registry_order_by(order_by, Target::Versions)
}

fn registry_order_by(order_by: &str, target: Target) -> Result<RegistryOrderBy, SearchSyntaxError> {
    let mut parser = Parser::new(order_by)?;
    let identifier = parser.order_by_identifier(order_by)?;
    let ascending = parser.order_direction(order_by)?;
    let (entity, name) = identifier.split();
    let key = match (entity.map(|e| e.text.as_str()), name.as_str(), target) {
        (None, "name", _) => Some(RegistryOrderKey::Name),
        (None, "timestamp" | "last_updated_timestamp", Target::Models) => Some(RegistryOrderKey::LastUpdatedTimestamp),
        (None, "last_updated_timestamp", Target::Versions) => Some(RegistryOrderKey::LastUpdatedTimestamp),
        (None, "creation_timestamp", Target::Versions) => Some(RegistryOrderKey::CreationTimestamp),
        (None, "version_number", Target::Versions) => Some(RegistryOrderKey::VersionNumber),
        _ => None,
    };
    let valid = match target {
        Target::Models => "name, timestamp, last_updated_timestamp",
        Target::Versions => "name, version_number, creation_timestamp, last_updated_timestamp",
    };
    key.map(|key| RegistryOrderBy { key, ascending })
        .ok_or_else(|| error(format!("Invalid order by key '{}' specified. Valid keys are {valid}", identifier.text)))
}

impl Parser {
    fn registry_comparison(&mut self, target: Target) -> Result<RegistryComparison, SearchSyntaxError> {
        let identifier = self.identifier()?;
        let key = registry_key(&identifier, target)?;
        let (op, operand) = self.predicate(&identifier.text)?;
        let text = identifier.text.as_str();
        let value = match &key {
            RegistryKey::Tag(_) => {
                check_op(op, TAG_OPS, "tag", text, "no key")?;
                string(operand, "tag", text)?
            }
            RegistryKey::VersionNumber => {
                check_op(op, NUMERIC_OPS, "numeric attribute", text, "no key")?;
                match operand {
                    Operand::Number { integer: true, value, .. } => FilterValue::Number(value),
                    Operand::String(value) if value.trim().parse::<i64>().is_ok() => {
                        FilterValue::Number(value.trim().parse::<i64>().unwrap_or_default() as f64)
                    }
                    other => {
                        return Err(error(format!(
                            "Invalid value for numeric attribute '{text}': {}",
                            other.describe()
                        )))
                    }
                }
            }
            RegistryKey::Name | RegistryKey::RunId => {
                check_op(op, STRING_ATTRIBUTE_OPS, "attribute", text, "no key")?;
                string(operand, "attribute", text)?
            }
            RegistryKey::SourcePath => {
                check_op(op, STRING_OPS, "attribute", text, "no key")?;
                string(operand, "attribute", text)?
            }
        };
        Ok(RegistryComparison { key, op, value })
    }
}

fn registry_key(identifier: &Identifier, target: Target) -> Result<RegistryKey, SearchSyntaxError> {
    let (entity, key) = identifier.split();
    let valid = match target {
        Target::Models => MODEL_ATTRIBUTES,
        Target::Versions => VERSION_ATTRIBUTES,
    };
    match entity.map(|segment| segment.text.as_str()) {
        None | Some("attribute" | "attributes") => match (key.as_str(), target) {
            ("name", _) => Ok(RegistryKey::Name),
            ("run_id", Target::Versions) => Ok(RegistryKey::RunId),
            ("source_path", Target::Versions) => Ok(RegistryKey::SourcePath),
            ("version_number", Target::Versions) => Ok(RegistryKey::VersionNumber),
            (other, _) => Err(error(format!("Invalid attribute name: {other}. Valid attributes are {valid}"))),
        },
        Some("tag" | "tags") => Ok(RegistryKey::Tag(key)),
        Some(other) => Err(error(format!(
            "Invalid entity type '{other}' in '{}'. Valid entity types are attribute, tag",
            identifier.text
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_filters() {
        let filter = parse_registered_model_filter("name LIKE 'fraud%' AND tags.`team` = 'risk'").unwrap();
        assert_eq!(filter.clauses.len(), 2);
        assert_eq!(filter.clauses[0].key, RegistryKey::Name);
        assert_eq!(filter.clauses[0].op, CompareOp::Like);
        assert_eq!(filter.clauses[1].key, RegistryKey::Tag("team".into()));
        let prompt = parse_registered_model_filter("tags.mlflow.prompt.is_prompt = 'true'").unwrap();
        assert_eq!(prompt.clauses[0].key, RegistryKey::Tag("mlflow.prompt.is_prompt".into()));
        assert!(parse_registered_model_filter("name IN ('a', 'b')").is_ok());
        assert!(parse_registered_model_filter("run_id = 'x'").unwrap_err().0.contains("Invalid attribute name"));
        assert!(parse_registered_model_filter("tags.x IN ('a')").is_err());
        assert!(parse_registered_model_filter("name = 'a' OR name = 'b'").is_err());
    }

    #[test]
    fn version_filters() {
        let filter = parse_model_version_filter("name = 'm' AND version_number >= 2 AND run_id IN ('a','b')").unwrap();
        assert_eq!(filter.clauses[1].value, FilterValue::Number(2.0));
        assert_eq!(filter.clauses[2].value, FilterValue::List(vec!["a".into(), "b".into()]));
        assert!(parse_model_version_filter("version_number = 1.5").is_err());
        assert!(parse_model_version_filter("source_path IN ('a')").is_err());
        assert!(parse_model_version_filter("status = 'READY'").is_err());
    }

    #[test]
    fn orderings() {
        assert_eq!(
            parse_registered_model_order_by("timestamp DESC").unwrap(),
            RegistryOrderBy { key: RegistryOrderKey::LastUpdatedTimestamp, ascending: false }
        );
        assert!(parse_registered_model_order_by("version_number").is_err());
        assert_eq!(parse_model_version_order_by("version_number").unwrap().key, RegistryOrderKey::VersionNumber);
        assert!(parse_model_version_order_by("tags.x").is_err());
    }
}
