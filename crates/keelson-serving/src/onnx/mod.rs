//! ONNX models: tract runs the standard operators, Keelson runs the ONNX-ML ones natively.

pub mod ml;
