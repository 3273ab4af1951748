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
    Tract(Box<TractSegment>),
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
            Executor::Tract(Box::new(
                TractSegment::new(&proto_without_initializer_inputs(&proto, &input_names), &declared)
                    .map_err(OnnxError::Invalid)?,
            ))
        };
        Ok(OnnxModel { signature, executor })
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// What another ONNX runtime needs: the model as one self-contained file and its signature.
    /// The bytes are the ones given unless initializers had to be inlined from `files`; only then
    /// is the model re-encoded (tract's protobuf types keep tensor-typed values only, so
    /// re-encoding is kept to the models that need it).
    pub fn self_contained(bytes: &[u8], files: &HashMap<String, Vec<u8>>) -> Result<(Vec<u8>, Signature), OnnxError> {
        let mut proto = tract_onnx::onnx()
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|error| OnnxError::Invalid(format!("not an ONNX model: {error:#}")))?;
        let before = proto.clone();
        external::inline_external_data(&mut proto, files)?;
        let graph = proto.graph.as_ref().ok_or_else(|| OnnxError::Invalid("the model has no graph".into()))?;
        let signature = signature_of(graph)?;
        let bytes = if proto == before { bytes.to_vec() } else { prost::Message::encode_to_vec(&proto) };
        Ok((bytes, signature))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::onnx::ml::test_support::{attr_floats, attr_int, attr_ints, attr_string, f32s, int64_values};
    use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
    use tract_onnx::pb::{type_proto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto};

    fn typed(name: &str, datatype: DataType, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|&d| Dimension {
                value: Some(if d < 0 { dimension::Value::DimParam("N".into()) } else { dimension::Value::DimValue(d) }),
                ..Dimension::default()
            })
            .collect();
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: convert::onnx_elem_type(datatype),
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..TypeProto::default()
            }),
            ..ValueInfoProto::default()
        }
    }

    /// skl2onnx's classifiers end this way: a native LinearClassifier whose label output (typed
    /// nowhere in the graph) feeds a standard Cast that tract runs.
    fn classifier_then_cast() -> Vec<u8> {
        let mut classifier = ml::test_support::node(
            "LinearClassifier",
            vec![
                attr_floats("coefficients", &[0.5, 0.25]),
                attr_floats("intercepts", &[0.1]),
                attr_ints("classlabels_ints", &[7, 9]),
                attr_string("post_transform", "LOGISTIC"),
            ],
        );
        classifier.input = vec!["x".into()];
        classifier.output = vec!["label".into(), "scores".into()];
        let cast = NodeProto {
            op_type: "Cast".into(),
            name: "cast_label".into(),
            input: vec!["label".into()],
            output: vec!["output_label".into()],
            attribute: vec![attr_int("to", convert::onnx_elem_type(DataType::Int64) as i64)],
            ..NodeProto::default()
        };
        let graph = GraphProto {
            name: "g".into(),
            node: vec![classifier, cast],
            input: vec![typed("x", DataType::Fp32, &[-1, 2])],
            output: vec![typed("output_label", DataType::Int64, &[-1]), typed("scores", DataType::Fp32, &[-1, 2])],
            ..GraphProto::default()
        };
        let opsets = [("", 17), (ml::ML_DOMAIN, 3)]
            .map(|(domain, version)| OperatorSetIdProto { domain: domain.into(), version })
            .to_vec();
        let model = ModelProto { ir_version: 8, opset_import: opsets, graph: Some(graph), ..ModelProto::default() };
        prost::Message::encode_to_vec(&model)
    }

    #[test]
    fn a_standard_operator_reads_a_native_output_of_undeclared_type() {
        let model = OnnxModel::load(&classifier_then_cast()).unwrap();
        for rows in [1, 3] {
            let x = f32s(&[rows, 2], &[1.0, -2.0, 0.5, 0.25, -1.0, 3.0][..rows * 2]);
            let outputs = model.run(vec![x]).unwrap();
            // Scores 0.5a + 0.25b + 0.1: 0.1, 0.4125, 0.35 → all positive → class 9.
            assert_eq!(int64_values(&outputs[0]), vec![9; rows]);
            assert_eq!(outputs[1].shape, vec![rows, 2]);
        }
    }

    #[test]
    fn self_contained_keeps_the_bytes_of_a_model_without_external_data() {
        let bytes = classifier_then_cast();
        let (same, signature) = OnnxModel::self_contained(&bytes, &HashMap::new()).unwrap();
        assert_eq!(same, bytes);
        assert_eq!(signature.inputs[0].name, "x");
        assert_eq!(signature.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["output_label", "scores"]);
    }
}
