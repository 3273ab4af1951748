//! The `external` runtime: a model served by another Open Inference Protocol (KServe V2)
//! server — Triton, MLServer, KServe, another Keelson. Its signature is read from the server's
//! model metadata when deploying; each prediction is one V2 JSON request to it.
//!
//! Predictions run on the deployment's replica threads like any runtime (so `replicas` bounds
//! the requests in flight to the remote server); each thread drives the async HTTP client on
//! the server's Tokio runtime and waits for the answer.

use crate::deployment::ExternalSpec;
use crate::protocol::json_tensor::{elements_from_json, elements_to_json};
use crate::runtime::{ModelRuntime, RuntimeError};
use crate::signature::{Signature, TensorSpec};
use crate::tensor::{DataType, Tensor};
use keelson_egress::{read_limited, EgressClient, EgressError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Longest a remote answer may be; a larger one is refused rather than held in memory.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug)]
pub struct RemoteModel {
    model_url: String,
    infer_url: url::Url,
    signature: Signature,
    platform: String,
    client: EgressClient,
    timeout: Duration,
    runtime: tokio::runtime::Handle,
}

#[derive(Deserialize)]
struct WireMetadata {
    #[serde(default)]
    platform: String,
    #[serde(default)]
    inputs: Vec<WireTensorMetadata>,
    #[serde(default)]
    outputs: Vec<WireTensorMetadata>,
}

#[derive(Deserialize)]
struct WireTensorMetadata {
    name: String,
    datatype: String,
    shape: Vec<i64>,
}

#[derive(Deserialize)]
struct WireOutput {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    #[serde(default)]
    data: Value,
}

impl RemoteModel {
    /// Reads the remote model's metadata and readiness. Called on the Tokio runtime.
    /// The address of `spec.url` is checked by the client's egress policy (after resolution, on
    /// each redirect).
    pub async fn connect(
        spec: &ExternalSpec,
        timeout: Duration,
        client: &Result<EgressClient, String>,
    ) -> Result<RemoteModel, String> {
        let base = spec.url.trim_end_matches('/');
        let mut model_url = format!("{base}/v2/models/{}", spec.model);
        if let Some(version) = &spec.version {
            model_url.push_str(&format!("/versions/{version}"));
        }
        let client = client.clone()?;
        let parsed = url::Url::parse(&model_url).map_err(|error| format!("`{model_url}` is not a URL: {error}"))?;
        let no_answer = |error: EgressError| format!("the external server at `{base}` did not answer: {error}");
        let metadata = client
            .get(&parsed)
            .map_err(no_answer)?
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| no_answer(EgressClient::explain(&error)))?;
        let status = metadata.status();
        if !status.is_success() {
            return Err(format!("the external server answered {} for `{model_url}`", status.as_u16()));
        }
        let body = read_limited(metadata, MAX_ANSWER_BYTES as u64)
            .await
            .map_err(|error| format!("reading `{model_url}`: {error}"))?;
        let metadata: WireMetadata = serde_json::from_slice(&body).map_err(|error| {
            format!(
                "`{model_url}` is not Open Inference Protocol model metadata (at line {}, column {})",
                error.line(),
                error.column()
            )
        })?;
        let signature = Signature {
            inputs: tensor_specs(&metadata.inputs, "input")?,
            outputs: tensor_specs(&metadata.outputs, "output")?,
        };
        if signature.inputs.is_empty() || signature.outputs.is_empty() {
            return Err(format!(
                "`{model_url}` declares no inputs or no outputs; the external model's metadata must list both"
            ));
        }
        let ready_url = url::Url::parse(&format!("{model_url}/ready"))
            .map_err(|error| format!("`{model_url}/ready` is not a URL: {error}"))?;
        let ready = client
            .get(&ready_url)
            .map_err(no_answer)?
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| no_answer(EgressClient::explain(&error)))?;
        if !ready.status().is_success() {
            return Err(format!("the external model is not ready: `{model_url}/ready` answered {}", ready.status()));
        }
        let infer_url = url::Url::parse(&format!("{model_url}/infer"))
            .map_err(|error| format!("`{model_url}/infer` is not a URL: {error}"))?;
        Ok(RemoteModel {
            infer_url,
            timeout,
            model_url,
            signature,
            platform: metadata.platform,
            client,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    async fn forward(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let inputs: Vec<Value> = self
            .signature
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(spec, tensor)| {
                json!({
                    "name": spec.name,
                    "datatype": tensor.datatype().as_str(),
                    "shape": tensor.shape,
                    "data": elements_to_json(&tensor.data),
                })
            })
            .collect();
        let no_answer =
            |error: EgressError| RuntimeError::Failed(format!("the external server did not answer: {error}"));
        let response = self
            .client
            .post(&self.infer_url)
            .map_err(no_answer)?
            .timeout(self.timeout)
            .json(&json!({ "inputs": inputs }))
            .send()
            .await
            .map_err(|error| no_answer(EgressClient::explain(&error)))?;
        let status = response.status();
        if response.content_length().is_some_and(|length| length > MAX_ANSWER_BYTES as u64) {
            return Err(RuntimeError::Failed(format!(
                "the external server's answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        let body = read_limited(response, MAX_ANSWER_BYTES as u64)
            .await
            .map_err(|error| RuntimeError::Failed(format!("reading the external server's answer: {error}")))?;
        if matches!(status.as_u16(), 400 | 413 | 422) {
            // The request passed our signature check, so the remote model judged the values.
            // Other answers (404 for a model gone, 408, 429, 5xx) are the remote's failures.
            return Err(RuntimeError::Input(format!("the external model refused the input: {}", error_text(&body))));
        }
        if !status.is_success() {
            return Err(RuntimeError::Failed(format!("the external server answered {status}: {}", error_text(&body))));
        }
        self.read_outputs(&body).map_err(RuntimeError::Failed)
    }

    fn read_outputs(&self, body: &[u8]) -> Result<Vec<Tensor>, String> {
        #[derive(Deserialize)]
        struct WireAnswer {
            outputs: Vec<WireOutput>,
        }
        let answer: WireAnswer = serde_json::from_slice(body)
            .map_err(|error| format!("the external server's answer is not an inference response: {error}"))?;
        let mut outputs = answer.outputs;
        self.signature
            .outputs
            .iter()
            .map(|spec| {
                let position = outputs
                    .iter()
                    .position(|output| output.name == spec.name)
                    .ok_or_else(|| format!("the external server's answer has no output `{}`", spec.name))?;
                let output = outputs.swap_remove(position);
                let what = format!("external output `{}`", output.name);
                let datatype = DataType::parse(&output.datatype)
                    .ok_or_else(|| format!("{what} has unknown datatype `{}`", output.datatype))?;
                let shape = output
                    .shape
                    .iter()
                    .map(|&dim| usize::try_from(dim).map_err(|_| format!("{what} has a negative dimension")))
                    .collect::<Result<Vec<usize>, String>>()?;
                let data = elements_from_json(&output.data, datatype, &what).map_err(|error| error.0)?;
                Tensor::new(shape, data).map_err(|error| format!("{what}: {error}"))
            })
            .collect()
    }
}

impl ModelRuntime for RemoteModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn describe(&self) -> String {
        if self.platform.is_empty() {
            format!("external V2 model {}", self.model_url)
        } else {
            format!("external V2 model {} ({})", self.model_url, self.platform)
        }
    }

    fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        // Runs on a replica thread (or a blocking task), never on a Tokio worker.
        self.runtime.block_on(self.forward(inputs))
    }
}

fn tensor_specs(wire: &[WireTensorMetadata], what: &str) -> Result<Vec<TensorSpec>, String> {
    wire.iter()
        .map(|tensor| {
            let datatype = DataType::parse(&tensor.datatype).ok_or_else(|| {
                format!("external model {what} `{}` has unknown datatype `{}`", tensor.name, tensor.datatype)
            })?;
            Ok(TensorSpec { name: tensor.name.clone(), datatype, shape: tensor.shape.clone(), class_labels: None })
        })
        .collect()
}

/// The `error` of an Open Inference Protocol error answer (the protocol's message for the
/// caller, cut to 300 characters). Anything else the server sent is not repeated: a body that is
/// not in the protocol's shape is no message meant for our callers.
fn error_text(body: &[u8]) -> String {
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        if let Some(Value::String(error)) = object.get("error") {
            return error.chars().take(300).collect();
        }
    }
    "no error message in the Open Inference Protocol shape".to_string()
}
