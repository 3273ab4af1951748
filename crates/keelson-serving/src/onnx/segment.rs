//! A run of standard ONNX operators executed by tract. Its plan is compiled for concrete input
//! types and shapes: once with a symbolic batch dimension when the declared shapes allow it
//! (one plan serves every batch size), otherwise per distinct input layout, kept in a small
//! cache so a steady stream of one batch size compiles once. A segment reading values whose
//! type the graph does not declare (outputs of a native ONNX-ML step, which exporters rarely
//! annotate) is parsed per layout too, with the types of the tensors that arrive.

use super::convert::{datum_type, from_tract, onnx_elem_type, to_tract};
use crate::tensor::{DataType, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

/// An input's declared datatype and shape (`None` for a dimension of any size), when known.
pub type Declared = Option<(DataType, Vec<Option<usize>>)>;

/// Compiled plans kept per input layout; beyond this the cache starts over, so a client cycling
/// through batch sizes costs compile time, never unbounded memory.
const MAX_CACHED_PLANS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Layout(Vec<(DataType, Vec<usize>)>);

pub struct TractSegment {
    /// Parsed once when every input's type is declared.
    model: Option<InferenceModel>,
    /// Otherwise parsed per layout, the inputs typed from the tensors given.
    untyped: Option<ModelProto>,
    symbolic: Option<Plan>,
    plans: Mutex<HashMap<Layout, Plan>>,
}

impl std::fmt::Debug for TractSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractSegment").field("symbolic", &self.symbolic.is_some()).finish()
    }
}

impl TractSegment {
    /// Parses the (sub-)model. `declared` gives, per input, its datatype and declared shape
    /// (`None` for a dimension of any size) when known; with all of them known, a plan with a
    /// symbolic batch is compiled at once, which also proves the model loads.
    pub fn new(proto: &ModelProto, declared: &[Declared]) -> Result<Self, String> {
        if !declared.iter().all(Option::is_some) {
            return Ok(TractSegment {
                model: None,
                untyped: Some(proto.clone()),
                symbolic: None,
                plans: Mutex::new(HashMap::new()),
            });
        }
        let model = parse(proto)?;
        let symbolic = if declared.is_empty() { None } else { compile_symbolic(&model, declared).ok() };
        Ok(TractSegment { model: Some(model), untyped: None, symbolic, plans: Mutex::new(HashMap::new()) })
    }

    /// Whether one plan serves every batch size.
    pub fn is_symbolic(&self) -> bool {
        self.symbolic.is_some()
    }

    pub fn run(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, String> {
        let plan = match &self.symbolic {
            Some(plan) => plan.clone(),
            None => self.plan_for(inputs)?,
        };
        let values = inputs
            .iter()
            .map(|tensor| to_tract(tensor).map(|t| t.into_tvalue()))
            .collect::<Result<TVec<TValue>, String>>()?;
        let outputs = plan.run(values).map_err(|error| format!("{error:#}"))?;
        outputs.iter().map(|value| from_tract(value)).collect()
    }

    fn plan_for(&self, inputs: &[&Tensor]) -> Result<Plan, String> {
        let layout = Layout(inputs.iter().map(|t| (t.datatype(), t.shape.clone())).collect());
        if let Some(plan) = self.plans.lock().unwrap_or_else(|p| p.into_inner()).get(&layout) {
            return Ok(plan.clone());
        }
        // Compiled outside the lock: other layouts keep running meanwhile.
        let mut model = match (&self.model, &self.untyped) {
            (Some(model), _) => model.clone(),
            (None, Some(proto)) => parse(&typed_inputs(proto, &layout))?,
            (None, None) => return Err("the segment has no model".into()),
        };
        for (index, (datatype, shape)) in layout.0.iter().enumerate() {
            let fact = InferenceFact::dt_shape(datum_type(*datatype), shape.as_slice());
            model.set_input_fact(index, fact).map_err(|error| format!("{error:#}"))?;
        }
        let plan =
            model.into_optimized().and_then(|typed| typed.into_runnable()).map_err(|error| format!("{error:#}"))?;
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans.len() >= MAX_CACHED_PLANS {
            plans.clear();
        }
        plans.insert(layout, plan.clone());
        Ok(plan)
    }
}

fn parse(proto: &ModelProto) -> Result<InferenceModel, String> {
    tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_output_types(true)
        .model_for_proto_model(proto)
        .map_err(|error| format!("{error:#}"))
}

/// The segment with each graph input declared as the tensor that arrived for it.
fn typed_inputs(proto: &ModelProto, layout: &Layout) -> ModelProto {
    use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
    use tract_onnx::pb::{type_proto, TensorShapeProto, TypeProto};
    let mut proto = proto.clone();
    if let Some(graph) = proto.graph.as_mut() {
        for (input, (datatype, shape)) in graph.input.iter_mut().zip(&layout.0) {
            let dim = shape
                .iter()
                .map(|size| Dimension { value: Some(dimension::Value::DimValue(*size as i64)), ..Dimension::default() })
                .collect();
            input.r#type = Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: onnx_elem_type(*datatype),
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..TypeProto::default()
            });
        }
    }
    proto
}

fn compile_symbolic(model: &InferenceModel, declared: &[Declared]) -> TractResult<Plan> {
    let mut model = model.clone();
    let batch = model.symbols.sym("batch");
    for (index, spec) in declared.iter().enumerate() {
        let Some((datatype, shape)) = spec else {
            return Err(TractError::msg(format!("input {index} has no declared type")));
        };
        let dims: TVec<TDim> = shape
            .iter()
            .enumerate()
            .map(|(axis, dim)| match dim {
                Some(size) => Ok(TDim::from(*size as i64)),
                // Only the leading axis may vary: that is the batch every client varies.
                None if axis == 0 => Ok(TDim::from(batch.clone())),
                None => Err(TractError::msg(format!("input {index} axis {axis} has no fixed size"))),
            })
            .collect::<TractResult<_>>()?;
        model.set_input_fact(index, InferenceFact::dt_shape(datum_type(*datatype), dims))?;
    }
    model.into_optimized()?.into_runnable()
}
