//! ONNX models: tract runs the standard operators, Keelson runs the ONNX-ML ones natively. A
//! graph without ONNX-ML operators is one tract model; a graph with them runs as a
//! [`graph::MixedGraph`].

mod convert;
mod external;
mod graph;
pub mod ml;
mod segment;

use crate::signature::{Signature, TensorSpec};
use crate::tensor::{DataType, Tensor};
use graph::{declared_type, MixedGraph};
use segment::TractSegment;
use std::collections::{HashMap, HashSet};
use tract_onnx::pb::{GraphProto, ModelProto};
use tract_onnx::prelude::Framework;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The model cannot be loaded or is inconsistent.
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// The request's tensors are not something the model can take.
    #[error("{0}")]
    Input(String),
    /// The runtime failed on inputs that passed the signature check.
    #[error("inference failed: {0}")]
    Run(String),
}

#[derive(Debug)]
enum Executor {
    Tract(TractSegment),
    Mixed(MixedGraph),
}

/// A loaded ONNX model, ready to run from any thread.
#[derive(Debug)]
pub struct OnnxModel {
    signature: Signature,
    executor: Executor,
}

impl OnnxModel {
    pub fn load(bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
        OnnxModel::load_with_files(bytes, &HashMap::new())
    }

    /// Loads a model whose initializers may live in `files` (external data, by file name).
    pub fn load_with_files(bytes: &[u8], files: &HashMap<String, Vec<u8>>) -> Result<OnnxModel, OnnxError> {
        let mut proto = tract_onnx::onnx()
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|error| OnnxError::Invalid(format!("not an ONNX model: {error:#}")))?;
        external::inline_external_data(&mut proto, files)?;
        let graph = proto.graph.as_ref().ok_or_else(|| OnnxError::Invalid("the model has no graph".into()))?;
        let signature = signature_of(graph)?;
        let input_names: Vec<String> = signature.inputs.iter().map(|spec| spec.name.clone()).collect();
        let executor = if MixedGraph::needed_for(graph) {
            Executor::Mixed(MixedGraph::build(&proto, graph, &input_names)?)
        } else {
            let declared: Vec<_> =
                graph.input.iter().filter(|input| input_names.contains(&input.name)).map(declared_type).collect();
            Executor::Tract(
                TractSegment::new(&proto_without_initializer_inputs(&proto, &input_names), &declared)
                    .map_err(OnnxError::Invalid)?,
            )
        };
        Ok(OnnxModel { signature, executor })
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// How the graph runs, for logs and the deployment's description.
    pub fn execution(&self) -> String {
        match &self.executor {
            Executor::Tract(segment) if segment.is_symbolic() => "tract (one plan for every batch size)".into(),
            Executor::Tract(_) => "tract (a plan per input shape)".into(),
            Executor::Mixed(graph) => {
                let (native, segments) = graph.step_counts();
                format!("{native} native ONNX-ML operators and {segments} tract segments")
            }
        }
    }

    /// Runs the model on inputs already checked against [`OnnxModel::signature`], in its order.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OnnxError> {
        let outputs = match &self.executor {
            Executor::Tract(segment) => {
                let refs: Vec<&Tensor> = inputs.iter().collect();
                segment.run(&refs).map_err(OnnxError::Run)?
            }
            Executor::Mixed(graph) => graph.run(inputs)?,
        };
        if outputs.len() != self.signature.outputs.len() {
            return Err(OnnxError::Run(format!(
                "the model produced {} outputs but declares {}",
                outputs.len(),
                self.signature.outputs.len()
            )));
        }
        Ok(outputs)
    }
}

/// Initializers may be listed among a graph's inputs (old exporters do); they are constants,
/// not something a request provides.
fn proto_without_initializer_inputs(proto: &ModelProto, input_names: &[String]) -> ModelProto {
    let mut proto = proto.clone();
    if let Some(graph) = proto.graph.as_mut() {
        graph.input.retain(|input| input_names.contains(&input.name));
    }
    proto
}

fn signature_of(graph: &GraphProto) -> Result<Signature, OnnxError> {
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut inputs = Vec::new();
    for input in graph.input.iter().filter(|input| !initializers.contains(input.name.as_str())) {
        let Some((datatype, shape)) = declared_type(input) else {
            return Err(OnnxError::Invalid(format!("input `{}` is not a tensor of a supported type", input.name)));
        };
        inputs.push(TensorSpec { name: input.name.clone(), datatype, shape: wire_shape(&shape), class_labels: None });
    }
    let zipmaps: HashMap<&str, Vec<String>> = graph
        .node
        .iter()
        .filter(|node| node.op_type == "ZipMap")
        .flat_map(|node| node.output.iter().map(move |output| (output.as_str(), zipmap_labels(node))))
        .collect();
    let mut outputs = Vec::new();
    for output in &graph.output {
        let spec = match declared_type(output) {
            Some((datatype, shape)) => {
                TensorSpec { name: output.name.clone(), datatype, shape: wire_shape(&shape), class_labels: None }
            }
            // A ZipMap's sequence of maps is served as the [N, classes] probabilities it zips;
            // its class labels go with it for the protocols that answer maps.
            None if zipmaps.contains_key(output.name.as_str()) => {
                let labels = zipmaps.get(output.name.as_str()).cloned().unwrap_or_default();
                let columns = if labels.is_empty() { -1 } else { labels.len() as i64 };
                TensorSpec {
                    name: output.name.clone(),
                    datatype: DataType::Fp32,
                    shape: vec![-1, columns],
                    class_labels: Some(labels),
                }
            }
            None => {
                return Err(OnnxError::Invalid(format!("output `{}` is not a tensor of a supported type", output.name)))
            }
        };
        outputs.push(spec);
    }
    if inputs.is_empty() {
        return Err(OnnxError::Invalid("the model has no inputs".into()));
    }
    Ok(Signature { inputs, outputs })
}

/// The class labels a ZipMap node keys its maps by, as text.
fn zipmap_labels(node: &tract_onnx::pb::NodeProto) -> Vec<String> {
    for attribute in &node.attribute {
        match attribute.name.as_str() {
            "classlabels_int64s" => return attribute.ints.iter().map(i64::to_string).collect(),
            "classlabels_strings" => {
                return attribute.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()
            }
            _ => {}
        }
    }
    Vec::new()
}

fn wire_shape(shape: &[Option<usize>]) -> Vec<i64> {
    shape.iter().map(|dim| dim.map_or(-1, |size| size as i64)).collect()
}
