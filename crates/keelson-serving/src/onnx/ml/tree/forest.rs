//! Trees flattened into one contiguous node array, children resolved to indices at load, so a
//! row's walk down a tree is a tight loop over a few cache lines with no lookups or allocation.

use super::real::Real;
use super::spec::{NodeMode, TreeSpec};
use std::collections::{HashMap, HashSet};

const LEAF: u8 = 0;
const LEQ: u8 = 1;
const LT: u8 = 2;
const GTE: u8 = 3;
const GT: u8 = 4;
const EQ: u8 = 5;
const NEQ: u8 = 6;
/// Branches use different comparisons, so each node's own mode is read during the walk.
const MIXED: u8 = 7;
const MODE_BITS: u8 = 0x0f;
const MISSING_TRUE: u8 = 0x10;

fn mode_code(mode: NodeMode) -> u8 {
    match mode {
        NodeMode::Leaf => LEAF,
        NodeMode::Leq => LEQ,
        NodeMode::Lt => LT,
        NodeMode::Gte => GTE,
        NodeMode::Gt => GT,
        NodeMode::Eq => EQ,
        NodeMode::Neq => NEQ,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Node<T> {
    /// A branch's threshold. A leaf's first weight, or its own node value when it has no weight:
    /// that is what onnxruntime adds up for single-target ensembles.
    pub(crate) value: T,
    feature: u32,
    /// Branch: the child taken when the comparison holds. Leaf: its first weight.
    on_true: u32,
    /// Branch: the other child. Leaf: how many weights it has.
    on_false: u32,
    flags: u8,
}

/// A leaf's contribution to one target or class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Weight<T> {
    pub(crate) target: u32,
    pub(crate) value: T,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Forest<T> {
    /// Each tree in depth-first order, a branch's false child right after it.
    nodes: Vec<Node<T>>,
    roots: Vec<u32>,
    /// Leaf weights, each leaf's contiguous and in the order onnxruntime applies them.
    weights: Vec<Weight<T>>,
    /// The comparison every branch uses, or MIXED.
    mode: u8,
    has_missing_tracks: bool,
    /// Columns a row needs: one more than the largest feature id a branch reads.
    features: usize,
}

impl Forest<f64> {
    /// Lays out `spec` (values kept in f64, as given), or says why the trees are malformed.
    /// Like onnxruntime, a tree's root is its first listed node and nodes no root reaches are
    /// ignored; unlike it, cycles and trees whose nodes are not listed together are refused.
    pub(crate) fn build(spec: &TreeSpec, n_outputs: usize) -> Result<Forest<f64>, String> {
        let n = spec.tree_ids.len();
        if n >= u32::MAX as usize || spec.weights.len() >= u32::MAX as usize {
            return Err(format!("{n} nodes are too many"));
        }
        let index = index_nodes(spec)?;
        let roots = tree_roots(spec)?;
        let (children, features) = resolve_children(spec, &index)?;
        let leaf_weights = gather_weights(spec, &index, n_outputs)?;
        let (order, position) = depth_first(&roots, &children, n)?;

        let mut nodes = Vec::with_capacity(order.len());
        let mut weights = Vec::new();
        for &i in &order {
            let value = spec.values.get(i).copied().unwrap_or_default();
            let mode = spec.modes.get(i).copied().unwrap_or(NodeMode::Leaf);
            let node = match children.get(i).copied().flatten() {
                Some((on_true, on_false)) => {
                    let missing = spec.missing_true.get(i).copied().unwrap_or(false);
                    Node {
                        value,
                        feature: spec.feature_ids.get(i).map_or(0, |f| *f as u32),
                        on_true: position.get(on_true).copied().unwrap_or_default(),
                        on_false: position.get(on_false).copied().unwrap_or_default(),
                        flags: mode_code(mode) | if missing { MISSING_TRUE } else { 0 },
                    }
                }
                None => {
                    let own = leaf_weights.get(i).map(Vec::as_slice).unwrap_or_default();
                    let first = weights.len() as u32;
                    weights.extend_from_slice(own);
                    Node {
                        value: own.first().map_or(value, |w| w.value),
                        feature: 0,
                        on_true: first,
                        on_false: own.len() as u32,
                        flags: LEAF,
                    }
                }
            };
            nodes.push(node);
        }
        let branch_modes: HashSet<u8> =
            nodes.iter().map(|node| node.flags & MODE_BITS).filter(|mode| *mode != LEAF).collect();
        let mode = match branch_modes.iter().next() {
            Some(only) if branch_modes.len() == 1 => *only,
            _ => MIXED,
        };
        Ok(Forest {
            has_missing_tracks: nodes.iter().any(|node| node.flags & MISSING_TRUE != 0),
            roots: roots.iter().filter_map(|root| position.get(*root).copied()).collect(),
            nodes,
            weights,
            mode,
            features,
        })
    }

    /// The same forest with thresholds and weights in `U`, the precision it is evaluated in.
    pub(crate) fn cast<U: Real>(&self) -> Forest<U> {
        Forest {
            nodes: self
                .nodes
                .iter()
                .map(|n| Node {
                    value: U::from_f64(n.value),
                    feature: n.feature,
                    on_true: n.on_true,
                    on_false: n.on_false,
                    flags: n.flags,
                })
                .collect(),
            roots: self.roots.clone(),
            weights: self.weights.iter().map(|w| Weight { target: w.target, value: U::from_f64(w.value) }).collect(),
            mode: self.mode,
            has_missing_tracks: self.has_missing_tracks,
            features: self.features,
        }
    }
}

impl<T: Real> Forest<T> {
    pub(crate) fn roots(&self) -> &[u32] {
        &self.roots
    }

    pub(crate) fn features(&self) -> usize {
        self.features
    }

    pub(crate) fn weights_of(&self, leaf: &Node<T>) -> &[Weight<T>] {
        let start = leaf.on_true as usize;
        self.weights.get(start..start + leaf.on_false as usize).unwrap_or_default()
    }

    /// The leaf `row` reaches from `root`. Walks are specialised on the comparison when every
    /// branch shares one (the usual export), as onnxruntime does; `row` must hold
    /// [`Forest::features`] values (a shorter row reads NaN, never out of bounds).
    #[inline]
    pub(crate) fn leaf(&self, root: u32, row: &[T]) -> Option<&Node<T>> {
        let (nodes, at) = (self.nodes.as_slice(), root as usize);
        match (self.mode, self.has_missing_tracks) {
            (LEQ, false) => walk::<T, LEQ, false>(nodes, at, row),
            (LEQ, true) => walk::<T, LEQ, true>(nodes, at, row),
            (LT, false) => walk::<T, LT, false>(nodes, at, row),
            (LT, true) => walk::<T, LT, true>(nodes, at, row),
            (GTE, false) => walk::<T, GTE, false>(nodes, at, row),
            (GTE, true) => walk::<T, GTE, true>(nodes, at, row),
            (GT, false) => walk::<T, GT, false>(nodes, at, row),
            (GT, true) => walk::<T, GT, true>(nodes, at, row),
            (EQ, false) => walk::<T, EQ, false>(nodes, at, row),
            (EQ, true) => walk::<T, EQ, true>(nodes, at, row),
            (NEQ, false) => walk::<T, NEQ, false>(nodes, at, row),
            (NEQ, true) => walk::<T, NEQ, true>(nodes, at, row),
            (_, false) => walk::<T, MIXED, false>(nodes, at, row),
            (_, true) => walk::<T, MIXED, true>(nodes, at, row),
        }
    }
}

/// Follows branches from `at` to a leaf. The layout is acyclic (checked at build), so this ends.
#[inline(always)]
fn walk<'f, T: Real, const MODE: u8, const MISSING: bool>(
    nodes: &'f [Node<T>],
    mut at: usize,
    row: &[T],
) -> Option<&'f Node<T>> {
    loop {
        let node = nodes.get(at)?;
        let mode = node.flags & MODE_BITS;
        if mode == LEAF {
            return Some(node);
        }
        let x = row.get(node.feature as usize).copied().unwrap_or_else(T::nan);
        let holds = compare(if MODE == MIXED { mode } else { MODE }, x, node.value)
            || (MISSING && node.flags & MISSING_TRUE != 0 && x.is_nan());
        at = if holds { node.on_true } else { node.on_false } as usize;
    }
}

/// IEEE comparisons: NaN fails all of them but `!=`, exactly as in onnxruntime.
#[inline(always)]
fn compare<T: Real>(mode: u8, x: T, threshold: T) -> bool {
    match mode {
        LEQ => x <= threshold,
        LT => x < threshold,
        GTE => x >= threshold,
        GT => x > threshold,
        EQ => x == threshold,
        _ => x != threshold,
    }
}

fn index_nodes(spec: &TreeSpec) -> Result<HashMap<(i64, i64), usize>, String> {
    let mut index = HashMap::with_capacity(spec.tree_ids.len());
    for (i, (tree, node)) in spec.tree_ids.iter().zip(&spec.node_ids).enumerate() {
        if index.insert((*tree, *node), i).is_some() {
            return Err(format!("node {node} of tree {tree} is listed twice"));
        }
    }
    Ok(index)
}

/// The first node listed for each tree, in order.
fn tree_roots(spec: &TreeSpec) -> Result<Vec<usize>, String> {
    let mut roots = Vec::new();
    let mut seen = HashSet::new();
    let mut previous = None;
    for (i, tree) in spec.tree_ids.iter().enumerate() {
        if previous != Some(*tree) {
            if !seen.insert(*tree) {
                return Err(format!("the nodes of tree {tree} are not listed together"));
            }
            roots.push(i);
            previous = Some(*tree);
        }
    }
    Ok(roots)
}

type Children = Vec<Option<(usize, usize)>>;

/// Each branch's (true, false) children as node positions, and the feature count the branches need.
fn resolve_children(spec: &TreeSpec, index: &HashMap<(i64, i64), usize>) -> Result<(Children, usize), String> {
    let mut children = vec![None; spec.tree_ids.len()];
    let mut features = 0usize;
    let nodes = spec.tree_ids.iter().zip(&spec.node_ids).zip(&spec.modes).enumerate();
    for (i, ((tree, node), mode)) in nodes {
        if *mode == NodeMode::Leaf {
            continue;
        }
        let child = |id: Option<&i64>, side: &str| {
            let id = id.copied().unwrap_or(-1);
            match index.get(&(*tree, id)) {
                Some(c) if *c == i => Err(format!("node {node} of tree {tree} is its own {side} child")),
                Some(c) => Ok(*c),
                None => Err(format!("node {node} of tree {tree}: {side} child {id} does not exist")),
            }
        };
        let pair = (child(spec.true_ids.get(i), "true")?, child(spec.false_ids.get(i), "false")?);
        if let Some(slot) = children.get_mut(i) {
            *slot = Some(pair);
        }
        let feature = spec.feature_ids.get(i).copied().unwrap_or(-1);
        match u32::try_from(feature) {
            Ok(f) if f < u32::MAX => features = features.max(f as usize + 1),
            _ => return Err(format!("node {node} of tree {tree} reads feature {feature}")),
        }
    }
    Ok((children, features))
}

/// Each leaf's weights, in onnxruntime's order: sorted by (tree, node), then as listed.
fn gather_weights(
    spec: &TreeSpec,
    index: &HashMap<(i64, i64), usize>,
    n_outputs: usize,
) -> Result<Vec<Vec<Weight<f64>>>, String> {
    let mut order: Vec<usize> = (0..spec.weights.len()).collect();
    order.sort_by_key(|k| spec.weights.get(*k).map(|w| (w.tree, w.node, *k)));
    let mut per_node = vec![Vec::new(); spec.tree_ids.len()];
    for w in order.iter().filter_map(|k| spec.weights.get(*k)) {
        let target = usize::try_from(w.target)
            .ok()
            .filter(|t| *t < n_outputs)
            .ok_or_else(|| format!("weight for target/class {} outside 0..{n_outputs}", w.target))?;
        let Some(&i) = index.get(&(w.tree, w.node)) else {
            return Err(format!("weight for node {} of tree {}, which does not exist", w.node, w.tree));
        };
        // Old onnxmltools exports put weights on branches too; onnxruntime ignores those.
        if spec.modes.get(i) != Some(&NodeMode::Leaf) {
            continue;
        }
        if let Some(list) = per_node.get_mut(i) {
            list.push(Weight { target: target as u32, value: w.weight });
        }
    }
    Ok(per_node)
}

/// Depth-first order from every root (false child first, so it lands next to its parent) and each
/// node's new position. A child shared by two branches is placed once; reaching a node that is
/// still open on the current path is a cycle. Iterative, so deep trees cannot overflow the stack.
fn depth_first(roots: &[usize], children: &Children, n: usize) -> Result<(Vec<usize>, Vec<u32>), String> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; n];
    let mut position = vec![0u32; n];
    let mut order = Vec::with_capacity(n);
    let mut stack: Vec<(usize, bool)> = Vec::new();
    for &root in roots {
        stack.push((root, false));
        while let Some((i, leaving)) = stack.pop() {
            let Some(node_state) = state.get_mut(i) else { continue };
            if leaving {
                *node_state = DONE;
                continue;
            }
            match *node_state {
                DONE => continue,
                OPEN => return Err(format!("the trees contain a cycle through node position {i}")),
                _ => *node_state = OPEN,
            }
            if let Some(slot) = position.get_mut(i) {
                *slot = order.len() as u32;
            }
            order.push(i);
            stack.push((i, true));
            if let Some((on_true, on_false)) = children.get(i).copied().flatten() {
                stack.push((on_true, false));
                stack.push((on_false, false));
            }
        }
    }
    Ok((order, position))
}

#[cfg(test)]
mod tests {
    use super::super::spec::LeafWeight;
    use super::*;

    /// Tree 0: node 0 tests x0 <= 0.5 (true → leaf 1, false → leaf 2).
    fn stump() -> TreeSpec {
        TreeSpec {
            tree_ids: vec![0, 0, 0],
            node_ids: vec![0, 1, 2],
            feature_ids: vec![0, 0, 0],
            modes: vec![NodeMode::Leq, NodeMode::Leaf, NodeMode::Leaf],
            values: vec![0.5, 0.0, 0.0],
            true_ids: vec![1, 0, 0],
            false_ids: vec![2, 0, 0],
            missing_true: vec![],
            weights: vec![
                LeafWeight { tree: 0, node: 1, target: 0, weight: 1.0 },
                LeafWeight { tree: 0, node: 2, target: 0, weight: 2.0 },
            ],
        }
    }

    fn leaf_value(forest: &Forest<f64>, x: f64) -> Option<f64> {
        let root = *forest.roots().first()?;
        forest.leaf(root, &[x]).map(|leaf| leaf.value)
    }

    #[test]
    fn lays_out_and_walks_a_stump() {
        let forest = Forest::build(&stump(), 1);
        assert_eq!(forest.as_ref().map(|f| (f.roots().len(), f.features())), Ok((1, 1)));
        let forest = forest.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(leaf_value(&forest, 0.5), Some(1.0));
        assert_eq!(leaf_value(&forest, 0.6), Some(2.0));
        assert_eq!(leaf_value(&forest, f64::NAN), Some(2.0));
        // A row too short reads NaN instead of indexing past its end.
        assert_eq!(forest.roots().first().and_then(|r| forest.leaf(*r, &[])).map(|l| l.value), Some(2.0));
    }

    #[test]
    fn shares_a_child_between_branches() {
        let mut spec = stump();
        spec.false_ids = vec![1, 0, 0];
        let forest = Forest::build(&spec, 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(leaf_value(&forest, 0.9), Some(1.0));
    }

    #[test]
    fn ignores_weights_on_branches_and_reachless_nodes() {
        let mut spec = stump();
        spec.weights.push(LeafWeight { tree: 0, node: 0, target: 0, weight: 9.0 });
        spec.tree_ids.push(0);
        spec.node_ids.push(3);
        spec.feature_ids.push(7);
        spec.modes.push(NodeMode::Leq);
        spec.values.push(0.0);
        spec.true_ids.push(1);
        spec.false_ids.push(2);
        let forest = Forest::build(&spec, 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(leaf_value(&forest, 0.0), Some(1.0));
    }

    #[test]
    fn refuses_malformed_structure() {
        let broken = |edit: &dyn Fn(&mut TreeSpec)| {
            let mut spec = stump();
            edit(&mut spec);
            Forest::build(&spec, 1).err()
        };
        assert!(broken(&|s| s.node_ids = vec![0, 1, 1]).is_some(), "duplicate id");
        assert!(broken(&|s| s.true_ids = vec![5, 0, 0]).is_some(), "missing child");
        assert!(broken(&|s| s.false_ids = vec![0, 0, 0]).is_some(), "own child");
        assert!(broken(&|s| s.feature_ids = vec![-1, 0, 0]).is_some(), "negative feature");
        assert!(broken(&|s| s.weights[0].target = 1).is_some(), "target out of range");
        assert!(broken(&|s| s.weights[0].node = 8).is_some(), "weight on unknown node");
        assert!(broken(&|s| s.tree_ids = vec![0, 1, 0]).is_some(), "tree split apart");
        let cycle = |s: &mut TreeSpec| {
            s.modes[2] = NodeMode::Leq;
            s.true_ids[2] = 0;
            s.false_ids[2] = 1;
        };
        assert!(broken(&cycle).unwrap_or_default().contains("cycle"));
    }
}
