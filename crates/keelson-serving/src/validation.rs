//! The smoke test a deployment passes before it may receive traffic: given inputs (or the
//! input example logged with the model, or one synthetic row) must run, and given expected
//! outputs must match within a tolerance.

use crate::protocol::{mlflow, v2};
use crate::runtime::ModelRuntime;
use crate::tensor::{element_count, DataType, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn default_tolerance() -> f64 {
    1e-5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSpec {
    /// Open Inference Protocol input objects (`name`, `shape`, `datatype`, `data`).
    pub inputs: Value,
    /// Flat expected values per output name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_outputs: Option<BTreeMap<String, Vec<f64>>>,
    /// Allowed difference, relative to the expected value's magnitude (at least 1).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

impl ValidationSpec {
    pub fn check(&self) -> Result<(), String> {
        if self.inputs.as_array().is_none_or(|inputs| inputs.is_empty()) {
            return Err("`validation.inputs` must be a non-empty list of inference inputs".into());
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err(format!("`validation.tolerance` must be a non-negative number, not {}", self.tolerance));
        }
        Ok(())
    }
}

/// Runs the smoke test; the answer says what was checked, the error why it failed.
pub fn smoke_test(
    runtime: &dyn ModelRuntime,
    spec: Option<&ValidationSpec>,
    input_example: Option<&[u8]>,
) -> Result<String, String> {
    let signature = runtime.signature();
    let (inputs, what) = match (spec, input_example) {
        (Some(spec), _) => {
            let body = serde_json::to_vec(&json!({"inputs": spec.inputs})).map_err(|e| e.to_string())?;
            let request = v2::parse_infer_request(&body, None).map_err(|e| format!("validation inputs: {e}"))?;
            (request.inputs, "the validation inputs")
        }
        (None, Some(example)) => {
            let (inputs, _) = mlflow::parse_invocation(example, signature)
                .map_err(|e| format!("the model's logged input example: {e}"))?;
            (inputs, "the model's logged input example")
        }
        (None, None) => (synthetic_row(runtime), "one synthetic row of zeros"),
    };
    let ordered = signature.arrange_inputs(inputs).map_err(|e| format!("{what}: {e}"))?;
    let outputs = runtime.infer(ordered).map_err(|e| format!("the model failed on {what}: {e}"))?;
    let Some(expected) = spec.and_then(|s| s.expected_outputs.as_ref()) else {
        return Ok(format!("ran {what}"));
    };
    let tolerance = spec.map_or(default_tolerance(), |s| s.tolerance);
    for (name, want) in expected {
        let position = signature
            .outputs
            .iter()
            .position(|o| &o.name == name)
            .ok_or_else(|| format!("expected output `{name}` is not an output of the model"))?;
        let got = outputs[position]
            .data
            .to_f64()
            .ok_or_else(|| format!("output `{name}` is not numeric and cannot be compared"))?;
        if got.len() != want.len() {
            return Err(format!("output `{name}` has {} values but {} were expected", got.len(), want.len()));
        }
        for (index, (g, w)) in got.iter().zip(want).enumerate() {
            // Written so that NaN on either side counts as a mismatch.
            let close = (g - w).abs() <= tolerance * w.abs().max(1.0);
            if !close {
                return Err(format!(
                    "output `{name}` value {index} is {g} but {w} was expected (tolerance {tolerance})"
                ));
            }
        }
    }
    Ok(format!("ran {what} and matched the expected outputs"))
}

/// One row of zeros (empty strings for BYTES), any-size dimensions taken as 1.
fn synthetic_row(runtime: &dyn ModelRuntime) -> Vec<crate::signature::NamedTensor> {
    runtime
        .signature()
        .inputs
        .iter()
        .map(|spec| {
            let shape: Vec<usize> = spec.shape.iter().map(|d| usize::try_from(*d).unwrap_or(1)).collect();
            let n = element_count(&shape);
            let data = match spec.datatype {
                DataType::Bool => TensorData::Bool(vec![false; n]),
                DataType::Uint8 => TensorData::Uint8(vec![0; n]),
                DataType::Uint16 => TensorData::Uint16(vec![0; n]),
                DataType::Uint32 => TensorData::Uint32(vec![0; n]),
                DataType::Uint64 => TensorData::Uint64(vec![0; n]),
                DataType::Int8 => TensorData::Int8(vec![0; n]),
                DataType::Int16 => TensorData::Int16(vec![0; n]),
                DataType::Int32 => TensorData::Int32(vec![0; n]),
                DataType::Int64 => TensorData::Int64(vec![0; n]),
                DataType::Fp16 => TensorData::Fp16(vec![0; n]),
                DataType::Fp32 => TensorData::Fp32(vec![0.0; n]),
                DataType::Fp64 => TensorData::Fp64(vec![0.0; n]),
                DataType::Bytes => TensorData::Bytes(vec![Vec::new(); n]),
            };
            crate::signature::NamedTensor { name: spec.name.clone(), tensor: Tensor { shape, data } }
        })
        .collect()
}
