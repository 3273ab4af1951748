//! Placeholder: the parser is being written.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SearchSyntaxError(pub String);

pub fn parse_run_filter(_filter: &str) -> Result<RunFilter, SearchSyntaxError> {
    Err(SearchSyntaxError("not implemented".into()))
}
pub fn parse_run_order_by(_order_by: &str) -> Result<RunOrderBy, SearchSyntaxError> {
    Err(SearchSyntaxError("not implemented".into()))
}
pub fn parse_experiment_filter(_filter: &str) -> Result<ExperimentFilter, SearchSyntaxError> {
    Err(SearchSyntaxError("not implemented".into()))
}
pub fn parse_experiment_order_by(_order_by: &str) -> Result<ExperimentOrderBy, SearchSyntaxError> {
    Err(SearchSyntaxError("not implemented".into()))
}
