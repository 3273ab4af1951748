//! Runs an ONNX graph that mixes ONNX-ML operators with standard ones: the graph's nodes, in
//! their (topological) order, are cut into steps. An ONNX-ML node Keelson implements is a native
//! step; each maximal run of other nodes between them becomes one tract sub-model. Values flow
//! between steps through numbered slots.

use super::convert::{datatype_of_onnx, from_tract};
use super::ml::{self, MlOp, ML_DOMAIN};
use super::segment::TractSegment;
use super::OnnxError;
use crate::tensor::{DataType, Tensor};
use std::collections::{HashMap, HashSet};
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};

#[derive(Debug)]
enum Kernel {
    Native(Box<dyn MlOp>),
    Tract(Box<TractSegment>),
}

#[derive(Debug)]
struct Step {
    label: String,
    kernel: Kernel,
    /// Slots read, in the kernel's input order; `None` for an omitted optional input.
    inputs: Vec<Option<usize>>,
    /// Slots written, in the kernel's output order; `None` for an output nobody reads.
    outputs: Vec<Option<usize>>,
}

#[derive(Debug)]
pub struct MixedGraph {
    steps: Vec<Step>,
    slot_count: usize,
    input_slots: Vec<usize>,
    output_slots: Vec<usize>,
    constants: Vec<(usize, Tensor)>,
}

/// Slot numbers by value name.
#[derive(Default)]
struct Slots(HashMap<String, usize>);

impl Slots {
    fn of(&mut self, name: &str) -> usize {
        let next = self.0.len();
        *self.0.entry(name.to_string()).or_insert(next)
    }
}

impl MixedGraph {
    /// Whether the graph needs this executor: any ONNX-ML node Keelson runs natively.
    pub fn needed_for(graph: &GraphProto) -> bool {
        graph.node.iter().any(|node| node.domain == ML_DOMAIN && ml::build(node).is_some())
    }

    pub fn build(model: &ModelProto, graph: &GraphProto, input_names: &[String]) -> Result<Self, OnnxError> {
        let initializers: HashMap<&str, &TensorProto> =
            graph.initializer.iter().map(|tensor| (tensor.name.as_str(), tensor)).collect();
        let value_types: HashMap<&str, &ValueInfoProto> =
            graph.input.iter().chain(&graph.value_info).map(|info| (info.name.as_str(), info)).collect();
        let mut slots = Slots::default();
        let input_slots: Vec<usize> = input_names.iter().map(|name| slots.of(name)).collect();

        // Which value each later position reads, so a segment exports only what is used after it.
        let graph_outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        let mut last_use: HashMap<&str, usize> = HashMap::new();
        for (position, node) in graph.node.iter().enumerate() {
            for input in node.input.iter().filter(|name| !name.is_empty()) {
                last_use.insert(input.as_str(), position);
            }
        }
        let used_after = |name: &str, position: usize| {
            graph_outputs.contains(name) || last_use.get(name).is_some_and(|last| *last > position)
        };

        let mut steps = Vec::new();
        let mut constants = Vec::new();
        let mut native_constant_done: HashSet<String> = HashSet::new();
        let mut pending: Vec<&NodeProto> = Vec::new();
        let mut pending_end = 0;
        for (position, node) in graph.node.iter().enumerate() {
            let native = if node.domain == ML_DOMAIN { ml::build(node) } else { None };
            let Some(op) = native else {
                pending.push(node);
                pending_end = position;
                continue;
            };
            if !pending.is_empty() {
                steps.push(segment_step(model, &pending, &initializers, &value_types, &mut slots, |name| {
                    used_after(name, pending_end)
                })?);
                pending.clear();
            }
            let op = op.map_err(|error| OnnxError::Invalid(error.to_string()))?;
            let mut inputs = Vec::with_capacity(node.input.len());
            for name in &node.input {
                if name.is_empty() {
                    inputs.push(None);
                    continue;
                }
                let slot = slots.of(name);
                if let Some(proto) = initializers.get(name.as_str()) {
                    if native_constant_done.insert(name.clone()) {
                        constants.push((slot, load_constant(proto)?));
                    }
                }
                inputs.push(Some(slot));
            }
            let outputs = node.output.iter().map(|name| (!name.is_empty()).then(|| slots.of(name))).collect();
            steps.push(Step { label: node_label(node), kernel: Kernel::Native(op), inputs, outputs });
        }
        if !pending.is_empty() {
            steps.push(segment_step(model, &pending, &initializers, &value_types, &mut slots, |name| {
                graph_outputs.contains(name)
            })?);
        }
        let mut output_slots = Vec::with_capacity(graph.output.len());
        for output in &graph.output {
            match slots.0.get(&output.name) {
                Some(slot) => output_slots.push(*slot),
                None => return Err(OnnxError::Invalid(format!("graph output `{}` is never produced", output.name))),
            }
        }
        Ok(MixedGraph { steps, slot_count: slots.0.len(), input_slots, output_slots, constants })
    }

    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OnnxError> {
        let mut values: Vec<Option<Tensor>> = vec![None; self.slot_count];
        for (slot, tensor) in self.input_slots.iter().zip(inputs) {
            values[*slot] = Some(tensor);
        }
        for (slot, tensor) in &self.constants {
            values[*slot] = Some(tensor.clone());
        }
        for step in &self.steps {
            let mut arguments: Vec<&Tensor> = Vec::with_capacity(step.inputs.len());
            for slot in step.inputs.iter().flatten() {
                match values[*slot].as_ref() {
                    Some(tensor) => arguments.push(tensor),
                    None => {
                        return Err(OnnxError::Invalid(format!("{} reads a value no earlier step wrote", step.label)))
                    }
                }
            }
            let produced = match &step.kernel {
                Kernel::Native(op) => op.eval(&arguments).map_err(|error| match error {
                    ml::MlOpError::InvalidInput { .. } => OnnxError::Input(error.to_string()),
                    ml::MlOpError::InvalidModel { .. } => OnnxError::Invalid(error.to_string()),
                })?,
                Kernel::Tract(segment) => {
                    segment.run(&arguments).map_err(|error| OnnxError::Run(format!("{}: {error}", step.label)))?
                }
            };
            drop(arguments);
            for (slot, tensor) in step.outputs.iter().zip(produced) {
                if let Some(slot) = slot {
                    values[*slot] = Some(tensor);
                }
            }
        }
        self.output_slots
            .iter()
            .map(|slot| {
                values[*slot].take().ok_or_else(|| OnnxError::Invalid("a graph output was not computed".into()))
            })
            .collect()
    }

    /// Steps of each kind, for diagnostics: (native operators, tract segments).
    pub fn step_counts(&self) -> (usize, usize) {
        let native = self.steps.iter().filter(|step| matches!(step.kernel, Kernel::Native(_))).count();
        (native, self.steps.len() - native)
    }
}

fn node_label(node: &NodeProto) -> String {
    if node.name.is_empty() {
        node.op_type.clone()
    } else {
        format!("{} `{}`", node.op_type, node.name)
    }
}

fn load_constant(proto: &TensorProto) -> Result<Tensor, OnnxError> {
    let resolver = tract_onnx::data_resolver::default();
    let tensor = tract_onnx::tensor::load_tensor(&*resolver, proto, None)
        .map_err(|error| OnnxError::Invalid(format!("initializer `{}`: {error:#}", proto.name)))?;
    from_tract(&tensor).map_err(OnnxError::Invalid)
}

/// One tract sub-model for a run of standard nodes: its inputs are the values it reads that
/// earlier steps (or the request) provide, its outputs those read later or returned.
fn segment_step(
    model: &ModelProto,
    nodes: &[&NodeProto],
    initializers: &HashMap<&str, &TensorProto>,
    value_types: &HashMap<&str, &ValueInfoProto>,
    slots: &mut Slots,
    exported: impl Fn(&str) -> bool,
) -> Result<Step, OnnxError> {
    let produced: HashSet<&str> = nodes.iter().flat_map(|n| n.output.iter().map(String::as_str)).collect();
    let mut input_names: Vec<&str> = Vec::new();
    let mut used_initializers: Vec<TensorProto> = Vec::new();
    for node in nodes {
        for name in node.input.iter().map(String::as_str).filter(|name| !name.is_empty()) {
            if produced.contains(name) || input_names.contains(&name) {
                continue;
            }
            match initializers.get(name) {
                Some(proto) if !used_initializers.iter().any(|used| used.name == name) => {
                    used_initializers.push((*proto).clone())
                }
                Some(_) => {}
                None => input_names.push(name),
            }
        }
    }
    let output_names: Vec<&str> = nodes
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .filter(|name| !name.is_empty() && exported(name))
        .collect();
    let declared: Vec<_> =
        input_names.iter().map(|name| value_types.get(name).and_then(|info| declared_type(info))).collect();
    let graph = GraphProto {
        name: "keelson-segment".into(),
        node: nodes.iter().map(|node| (*node).clone()).collect(),
        initializer: used_initializers,
        input: input_names
            .iter()
            .map(|name| value_types.get(name).map(|info| (*info).clone()).unwrap_or_else(|| untyped(name)))
            .collect(),
        output: output_names.iter().map(|name| untyped(name)).collect(),
        ..GraphProto::default()
    };
    let proto = ModelProto { graph: Some(graph), ..model.clone() };
    let first = nodes.first().map(|n| node_label(n)).unwrap_or_default();
    let segment = TractSegment::new(&proto, &declared)
        .map_err(|error| OnnxError::Invalid(format!("operators from {first} on: {error}")))?;
    Ok(Step {
        label: format!("operators from {first} on"),
        kernel: Kernel::Tract(Box::new(segment)),
        inputs: input_names.iter().map(|name| Some(slots.of(name))).collect(),
        outputs: output_names.iter().map(|name| Some(slots.of(name))).collect(),
    })
}

fn untyped(name: &str) -> ValueInfoProto {
    ValueInfoProto { name: name.to_string(), ..ValueInfoProto::default() }
}

/// The declared datatype and shape of a value (None per dimension of any size).
pub fn declared_type(info: &ValueInfoProto) -> Option<(DataType, Vec<Option<usize>>)> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    use tract_onnx::pb::type_proto;
    let type_proto::Value::TensorType(tensor) = info.r#type.as_ref()?.value.as_ref()?;
    let datatype = datatype_of_onnx(tensor.elem_type)?;
    let shape = tensor
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|dim| match dim.value {
            Some(Value::DimValue(size)) if size >= 0 => usize::try_from(size).ok(),
            _ => None,
        })
        .collect();
    Some((datatype, shape))
}
