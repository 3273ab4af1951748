//! Keelson serving: model runtimes (tract with native ONNX-ML operators), inference protocols
//! (KServe V2 with its binary extension, KServe V1, MLflow `/invocations`), endpoints holding
//! deployments, traffic split, sticky routing and mirrored traffic.

pub mod collector;
pub mod controller;
pub mod deployment;
pub mod endpoint;
pub mod metrics;
pub mod onnx;
pub mod onnxruntime;
mod pool;
pub mod protocol;
pub mod remote;
pub mod rollout;
pub mod runtime;
pub mod service;
pub mod signature;
pub mod source;
pub mod stats;
pub mod tensor;
pub mod validation;

pub use deployment::{DeploymentSpec, InferError};
pub use endpoint::EndpointConfig;
pub use service::{RouteRequest, ServingError, ServingService};
pub use source::{ModelPackage, ModelReference, ModelSource, SourceError};
