//! What both tree operators share: the forest in both precisions, the input batch, and the
//! per-row accumulation of leaf weights into scores.

use super::super::context::OpContext;
use super::super::input;
use super::super::MlOpError;
use super::forest::Forest;
use super::real::Real;
use super::spec::TreeSpec;
use crate::tensor::{Tensor, TensorData};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

impl Aggregate {
    pub(crate) fn parse(name: &str) -> Option<Aggregate> {
        Some(match name {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            _ => return None,
        })
    }
}

/// A running score and whether any leaf touched it: onnxruntime reports untouched targets as 0
/// whatever base value they have, and its binary rules look at which class was touched.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Score<T> {
    pub(crate) value: T,
    pub(crate) touched: bool,
}

impl<T: Real> Score<T> {
    /// The value as written out: untouched scores read as zero.
    pub(crate) fn read(self) -> T {
        if self.touched {
            self.value
        } else {
            T::default()
        }
    }
}

#[derive(Debug)]
pub(crate) struct Ensemble {
    single: Forest<f32>,
    double: Forest<f64>,
    aggregate: Aggregate,
    /// Single-target regressors add each leaf's first weight (onnxruntime's fast path) rather
    /// than walking the leaf's weight list.
    single_target: bool,
}

/// A feature matrix in the precision its forest is evaluated in.
pub(crate) enum Rows<'a> {
    Single(Cow<'a, [f32]>),
    Double(&'a [f64]),
}

/// The rows of a request's feature matrix.
pub(crate) struct Batch<'a> {
    pub(crate) rows: usize,
    pub(crate) columns: usize,
    pub(crate) data: Rows<'a>,
}

impl Ensemble {
    pub(crate) fn build(
        ctx: &OpContext,
        spec: &TreeSpec,
        n_outputs: usize,
        aggregate: Aggregate,
        single_target: bool,
    ) -> Result<Ensemble, MlOpError> {
        let double = Forest::build(spec, n_outputs).map_err(|why| ctx.model(why))?;
        Ok(Ensemble { single: double.cast(), double, aggregate, single_target })
    }

    pub(crate) fn single(&self) -> &Forest<f32> {
        &self.single
    }

    pub(crate) fn double(&self) -> &Forest<f64> {
        &self.double
    }

    pub(crate) fn trees(&self) -> usize {
        self.double.roots().len()
    }

    /// The request's features: FP64 stays double, FP32 and integers are compared as f32 (as
    /// onnxruntime compares an int64 feature with a float threshold).
    pub(crate) fn batch<'a>(&self, ctx: &OpContext, x: &'a Tensor) -> Result<Batch<'a>, MlOpError> {
        let (rows, columns) = input::matrix(ctx, x)?;
        if input::product(ctx, rows, columns)? != x.len() {
            return Err(ctx.input(format!("shape {:?} does not match its {} elements", x.shape, x.len())));
        }
        if columns < self.double.features() {
            return Err(ctx.input(format!(
                "the trees read feature {} but the input has {columns} features",
                self.double.features() - 1
            )));
        }
        let data = match &x.data {
            TensorData::Fp64(v) => Rows::Double(v),
            _ => Rows::Single(input::as_f32(ctx, x)?),
        };
        Ok(Batch { rows, columns, data })
    }

    /// Every tree's leaf for `row`, combined into `scores` (one per target or class).
    pub(crate) fn accumulate<T: Real>(&self, forest: &Forest<T>, row: &[T], scores: &mut [Score<T>]) {
        scores.iter_mut().for_each(|s| *s = Score::default());
        for &root in forest.roots() {
            let Some(leaf) = forest.leaf(root, row) else { continue };
            if self.single_target {
                if let Some(score) = scores.first_mut() {
                    self.combine(score, leaf.value);
                }
                continue;
            }
            for weight in forest.weights_of(leaf) {
                if let Some(score) = scores.get_mut(weight.target as usize) {
                    self.combine(score, weight.value);
                }
            }
        }
    }

    #[inline]
    fn combine<T: Real>(&self, score: &mut Score<T>, value: T) {
        match self.aggregate {
            Aggregate::Sum | Aggregate::Average => {
                score.value = score.value + value;
                score.touched = true;
            }
            Aggregate::Min => {
                if !score.touched || value < score.value {
                    score.value = value;
                }
                score.touched = true;
            }
            Aggregate::Max => {
                if !score.touched || value > score.value {
                    score.value = value;
                }
                score.touched = true;
            }
        }
    }
}

/// Row `r` of a row-major matrix with `columns` columns (empty if out of range).
pub(crate) fn row<T>(data: &[T], columns: usize, r: usize) -> &[T] {
    let start = r.saturating_mul(columns);
    data.get(start..start.saturating_add(columns)).unwrap_or_default()
}
