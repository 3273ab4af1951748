//! The small forest the tree tests share: three trees that use every branch mode, a
//! missing-value flag, and a leaf without weight; and six rows that reach each leaf, NaNs included.
//! The same attributes were given to onnxruntime to produce the tests' expected values.

use crate::onnx::ml::test_support::*;
use crate::tensor::Tensor;
use tract_onnx::pb::AttributeProto;

pub(crate) fn forest() -> Vec<AttributeProto> {
    let leaf = "LEAF";
    vec![
        attr_ints("nodes_treeids", &[0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]),
        attr_ints("nodes_nodeids", &[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6]),
        attr_ints("nodes_featureids", &[0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 2, 0, 0]),
        attr_strings(
            "nodes_modes",
            &[
                "BRANCH_LEQ",
                leaf,
                "BRANCH_LT",
                leaf,
                leaf,
                "BRANCH_GTE",
                leaf,
                leaf,
                "BRANCH_GT",
                "BRANCH_EQ",
                leaf,
                leaf,
                "BRANCH_NEQ",
                leaf,
                leaf,
            ],
        ),
        attr_floats("nodes_values", &[0.5, 0.0, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.25]),
        attr_ints("nodes_truenodeids", &[1, 0, 3, 0, 0, 1, 0, 0, 1, 3, 0, 0, 5, 0, 0]),
        attr_ints("nodes_falsenodeids", &[2, 0, 4, 0, 0, 2, 0, 0, 2, 4, 0, 0, 6, 0, 0]),
        attr_ints("nodes_missing_value_tracks_true", &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
    ]
}

/// Weights as (ids, treeids, nodeids, weights) under `prefix` ("target" or "class").
pub(crate) fn weights(prefix: &str, ids: &[i64], trees: &[i64], nodes: &[i64], w: &[f32]) -> Vec<AttributeProto> {
    vec![
        attr_ints(&format!("{prefix}_ids"), ids),
        attr_ints(&format!("{prefix}_treeids"), trees),
        attr_ints(&format!("{prefix}_nodeids"), nodes),
        attr_floats(&format!("{prefix}_weights"), w),
    ]
}

/// One weight (for target/class `id`) on every leaf but tree 2's node 6.
pub(crate) fn one_column(prefix: &str, id: i64, w: &[f32; 8]) -> Vec<AttributeProto> {
    weights(prefix, &[id; 8], &[0, 0, 0, 1, 1, 2, 2, 2], &[1, 3, 4, 1, 2, 2, 3, 5], w)
}

/// Ten weights over three targets/classes; some leaves feed two, tree 2's node 6 none.
pub(crate) fn three_columns(prefix: &str) -> Vec<AttributeProto> {
    weights(
        prefix,
        &[0, 1, 0, 1, 0, 2, 1, 2, 1, 0],
        &[0, 0, 0, 0, 1, 1, 1, 2, 2, 2],
        &[1, 1, 3, 4, 1, 1, 2, 2, 3, 5],
        &[0.1, 0.5, 0.2, -0.3, 0.4, 0.6, 0.25, -0.1, 1.0, 0.7],
    )
}

pub(crate) fn rows() -> Tensor {
    let nan = f32::NAN;
    f32s(&[6, 3], &[0.2, 1.0, 1.0, 0.7, 2.0, -1.0, 0.7, 1.0, nan, nan, 0.0, 0.5, -0.5, 2.0, 1.0, 0.0, 3.0, 2.0])
}

/// The attributes of `parts` concatenated, for building a node.
pub(crate) fn with(parts: Vec<Vec<AttributeProto>>) -> Vec<AttributeProto> {
    parts.into_iter().flatten().collect()
}
