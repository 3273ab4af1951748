//! TreeEnsembleClassifier and TreeEnsembleRegressor (ai.onnx.ml opsets 1–3): attributes read
//! once into a flat forest, then evaluated row by row with onnxruntime's arithmetic.

mod classifier;
mod ensemble;
mod forest;
mod real;
mod regressor;
mod spec;

#[cfg(test)]
mod fixtures;

pub(crate) use classifier::build as build_classifier;
pub(crate) use regressor::build as build_regressor;
