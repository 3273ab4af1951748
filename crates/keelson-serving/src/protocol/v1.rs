//! KServe V1 (`POST /v1/models/{name}:predict`): `{"instances": [...]}` (or `"inputs"`) in,
//! `{"predictions": [...]}` out, one prediction per instance.

use super::rows::{inputs_from_instances, predictions_by_row};
use super::ProtocolError;
use crate::signature::{NamedTensor, Signature};
use serde_json::{json, Value};

pub fn parse_predict_request(body: &[u8], signature: &Signature) -> Result<Vec<NamedTensor>, ProtocolError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ProtocolError::new(format!("the request body is not valid JSON: {error}")))?;
    let instances = value
        .get("instances")
        .or_else(|| value.get("inputs"))
        .ok_or_else(|| ProtocolError::new("the request needs an `instances` list"))?;
    let Some(instances) = instances.as_array() else {
        return Err(ProtocolError::new("`instances` must be a list"));
    };
    if instances.is_empty() {
        return Err(ProtocolError::new("`instances` is empty"));
    }
    inputs_from_instances(signature, instances)
}

pub fn encode_predict_response(outputs: &[NamedTensor]) -> Value {
    json!({"predictions": predictions_by_row(outputs)})
}
