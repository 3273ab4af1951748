//! The tree attributes both ensembles share, read and checked for consistent lengths. Structure
//! (ids, children, cycles) is checked when the forest is laid out.

use super::super::attrs::Attrs;
use super::super::MlOpError;

/// How a node routes a row: a leaf, or a comparison of one feature with the node's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeMode {
    Leaf,
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

impl NodeMode {
    fn parse(name: &[u8]) -> Option<NodeMode> {
        Some(match name {
            b"LEAF" => NodeMode::Leaf,
            b"BRANCH_LEQ" => NodeMode::Leq,
            b"BRANCH_LT" => NodeMode::Lt,
            b"BRANCH_GTE" => NodeMode::Gte,
            b"BRANCH_GT" => NodeMode::Gt,
            b"BRANCH_EQ" => NodeMode::Eq,
            b"BRANCH_NEQ" => NodeMode::Neq,
            _ => return None,
        })
    }
}

/// One contribution of a leaf to a target (regressor) or class (classifier).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LeafWeight {
    pub(crate) tree: i64,
    pub(crate) node: i64,
    pub(crate) target: i64,
    pub(crate) weight: f64,
}

/// The `nodes_*` attributes, one entry per node, and the leaf weights.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeSpec {
    pub(crate) tree_ids: Vec<i64>,
    pub(crate) node_ids: Vec<i64>,
    pub(crate) feature_ids: Vec<i64>,
    pub(crate) modes: Vec<NodeMode>,
    pub(crate) values: Vec<f64>,
    pub(crate) true_ids: Vec<i64>,
    pub(crate) false_ids: Vec<i64>,
    /// Shorter than the node list when the model gives fewer flags (onnxruntime reads the
    /// missing ones as false).
    pub(crate) missing_true: Vec<bool>,
    pub(crate) weights: Vec<LeafWeight>,
}

impl TreeSpec {
    /// Reads the node attributes and the leaf weights named `{prefix}_ids`, `{prefix}_treeids`,
    /// `{prefix}_nodeids` and `{prefix}_weights` (or `{prefix}_weights_as_tensor`).
    pub(crate) fn read(attrs: &Attrs, prefix: &str) -> Result<TreeSpec, MlOpError> {
        let tree_ids = attrs.ints("nodes_treeids")?;
        let n = tree_ids.len();
        let same_length = |name: &str, len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(attrs.error(format!("`{name}` has {len} entries but `nodes_treeids` has {n}")))
            }
        };
        let node_ids = attrs.ints("nodes_nodeids")?;
        same_length("nodes_nodeids", node_ids.len())?;
        let feature_ids = attrs.ints("nodes_featureids")?;
        same_length("nodes_featureids", feature_ids.len())?;
        let true_ids = attrs.ints("nodes_truenodeids")?;
        same_length("nodes_truenodeids", true_ids.len())?;
        let false_ids = attrs.ints("nodes_falsenodeids")?;
        same_length("nodes_falsenodeids", false_ids.len())?;
        let values = attrs.reals("nodes_values", "nodes_values_as_tensor")?;
        same_length("nodes_values", values.len())?;
        let modes = attrs
            .strings("nodes_modes")?
            .iter()
            .map(|name| {
                NodeMode::parse(name)
                    .ok_or_else(|| attrs.error(format!("unknown node mode `{}`", String::from_utf8_lossy(name))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        same_length("nodes_modes", modes.len())?;
        let missing = attrs.ints("nodes_missing_value_tracks_true")?;
        if missing.len() > n {
            return Err(
                attrs.error(format!("`nodes_missing_value_tracks_true` has {} entries for {n} nodes", missing.len()))
            );
        }
        Ok(TreeSpec {
            tree_ids,
            node_ids,
            feature_ids,
            modes,
            values,
            true_ids,
            false_ids,
            missing_true: missing.iter().map(|flag| *flag == 1).collect(),
            weights: read_weights(attrs, prefix)?,
        })
    }
}

fn read_weights(attrs: &Attrs, prefix: &str) -> Result<Vec<LeafWeight>, MlOpError> {
    let targets = attrs.ints(&format!("{prefix}_ids"))?;
    let trees = attrs.ints(&format!("{prefix}_treeids"))?;
    let nodes = attrs.ints(&format!("{prefix}_nodeids"))?;
    let weights = attrs.reals(&format!("{prefix}_weights"), &format!("{prefix}_weights_as_tensor"))?;
    let n = targets.len();
    if trees.len() != n || nodes.len() != n || weights.len() != n {
        return Err(attrs.error(format!(
            "`{prefix}_ids`, `{prefix}_treeids`, `{prefix}_nodeids` and `{prefix}_weights` have \
             {n}, {}, {} and {} entries",
            trees.len(),
            nodes.len(),
            weights.len()
        )));
    }
    Ok((0..n)
        .filter_map(|i| {
            Some(LeafWeight {
                tree: *trees.get(i)?,
                node: *nodes.get(i)?,
                target: *targets.get(i)?,
                weight: *weights.get(i)?,
            })
        })
        .collect())
}
