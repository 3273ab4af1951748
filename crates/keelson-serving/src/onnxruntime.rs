//! The optional onnxruntime runtime, through the `ort` crate with `load-dynamic`: nothing is
//! downloaded or linked at build time; the server is told where a `libonnxruntime.so` is (the
//! PyPI `onnxruntime` wheel ships one) and loads it on first use. The library is loaded once per
//! process, so its path is server configuration, while each deployment chooses the runtime.
//!
//! onnxruntime's `Session::run` needs exclusive access, so a deployment holds one session per
//! replica; each replica thread takes a free one. Sessions run single-threaded: the replicas are
//! the parallelism, as with tract.

use crate::onnx::OnnxModel;
use crate::runtime::{ModelRuntime, RuntimeError};
use crate::signature::{Signature, TensorSpec};
use crate::tensor::{Tensor, TensorData};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::{DynMapValueType, DynValue, TensorElementType, ValueType};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Sets where `libonnxruntime.so` is; called once at start-up. A second, different path is
/// refused: the library already loaded stays for the life of the process.
pub fn configure(library: &Path) -> Result<(), String> {
    let library = library.to_path_buf();
    if !library.is_file() {
        return Err(format!("the onnxruntime library `{}` is not a file", library.display()));
    }
    let set = LIBRARY.get_or_init(|| library.clone());
    if *set != library {
        return Err(format!("the onnxruntime library is already set to `{}`", set.display()));
    }
    Ok(())
}

/// The configured library, if any.
pub fn configured_library() -> Option<&'static Path> {
    LIBRARY.get().map(PathBuf::as_path)
}

fn environment() -> Result<&'static Environment, String> {
    let Some(library) = LIBRARY.get() else {
        return Err(
            "the onnxruntime runtime is not configured on this server: set `serving.onnxruntime_library` \
                    to the path of a libonnxruntime.so (the PyPI onnxruntime wheel ships one), or use runtime `tract`"
                .into(),
        );
    };
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|error| format!("could not load onnxruntime from `{}`: {error}", library.display()))?
                .with_name("keelson")
                .with_telemetry(false)
                .build()
                .map_err(|error| format!("could not start onnxruntime: {error}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A model loaded into onnxruntime sessions, one per replica.
pub struct OrtModel {
    signature: Signature,
    sessions: Mutex<Vec<Session>>,
    returned: Condvar,
    /// What the session reports of the model, for the deployment's description.
    summary: String,
}

impl std::fmt::Debug for OrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtModel").field("signature", &self.signature).finish_non_exhaustive()
    }
}

impl OrtModel {
    pub fn load(bytes: &[u8], files: &HashMap<String, Vec<u8>>, replicas: usize) -> Result<OrtModel, String> {
        let (model, signature) = OnnxModel::self_contained(bytes, files).map_err(|error| error.to_string())?;
        let environment = environment()?;
        let mut sessions = Vec::with_capacity(replicas.max(1));
        for _ in 0..replicas.max(1) {
            sessions.push(new_session(environment, &model)?);
        }
        let summary = sessions.first().map(session_summary).unwrap_or_default();
        Ok(OrtModel { signature, sessions: Mutex::new(sessions), returned: Condvar::new(), summary })
    }

    fn take_session(&self) -> Session {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(session) = sessions.pop() {
                return session;
            }
            sessions = self.returned.wait(sessions).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give_back(&self, session: Session) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push(session);
        self.returned.notify_one();
    }

    fn run(&self, session: &mut Session, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for (spec, tensor) in self.signature.inputs.iter().zip(inputs) {
            values.push((spec.name.clone(), to_ort(tensor).map_err(RuntimeError::Input)?));
        }
        let outputs = session.run(values).map_err(|error| RuntimeError::Failed(format!("onnxruntime: {error}")))?;
        self.signature
            .outputs
            .iter()
            .map(|spec| {
                let value = outputs.get(spec.name.as_str()).ok_or_else(|| {
                    RuntimeError::Failed(format!("onnxruntime did not produce output `{}`", spec.name))
                })?;
                from_ort(spec, value).map_err(RuntimeError::Failed)
            })
            .collect()
    }
}

fn new_session(environment: &Environment, model: &[u8]) -> Result<Session, String> {
    let failed = |error: &dyn std::fmt::Display| format!("onnxruntime cannot load the model: {error}");
    Session::builder(environment)
        .map_err(|e| failed(&e))?
        .with_intra_threads(1)
        .map_err(|e| failed(&e))?
        .with_inter_threads(1)
        .map_err(|e| failed(&e))?
        .commit_from_memory(model)
        .map_err(|e| failed(&e))
}

fn session_summary(session: &Session) -> String {
    format!("{} inputs, {} outputs", session.inputs().len(), session.outputs().len())
}

impl ModelRuntime for OrtModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn describe(&self) -> String {
        format!("onnxruntime ({})", self.summary)
    }

    fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        let mut session = self.take_session();
        let result = self.run(&mut session, inputs);
        self.give_back(session);
        result
    }
}

fn ort_shape(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&dim| dim as i64).collect()
}

fn to_ort(tensor: Tensor) -> Result<DynValue, String> {
    let shape = ort_shape(&tensor.shape);
    let failed = |error: ort::Error| format!("onnxruntime refused the input: {error}");
    macro_rules! owned {
        ($data:expr) => {
            ort::value::Tensor::from_array((shape, $data)).map(|t| t.into_dyn()).map_err(failed)
        };
    }
    match tensor.data {
        TensorData::Bool(v) => owned!(v),
        TensorData::Uint8(v) => owned!(v),
        TensorData::Uint16(v) => owned!(v),
        TensorData::Uint32(v) => owned!(v),
        TensorData::Uint64(v) => owned!(v),
        TensorData::Int8(v) => owned!(v),
        TensorData::Int16(v) => owned!(v),
        TensorData::Int32(v) => owned!(v),
        TensorData::Int64(v) => owned!(v),
        TensorData::Fp16(v) => owned!(v.into_iter().map(half::f16::from_bits).collect::<Vec<_>>()),
        TensorData::Fp32(v) => owned!(v),
        TensorData::Fp64(v) => owned!(v),
        TensorData::Bytes(v) => {
            let strings = v
                .into_iter()
                .enumerate()
                .map(|(index, bytes)| {
                    String::from_utf8(bytes)
                        .map_err(|_| format!("BYTES element {index} is not UTF-8, which onnxruntime's strings must be"))
                })
                .collect::<Result<Vec<String>, String>>()?;
            ort::value::Tensor::from_string_array((shape, strings.as_slice())).map(|t| t.into_dyn()).map_err(failed)
        }
    }
}

fn from_ort(spec: &TensorSpec, value: &DynValue) -> Result<Tensor, String> {
    match value.dtype() {
        ValueType::Tensor { ty, .. } => tensor_from_ort(*ty, value),
        ValueType::Sequence(_) if spec.class_labels.is_some() => zipmap_from_ort(spec, value),
        other => Err(format!("onnxruntime answered output `{}` as {other:?}, which Keelson cannot serve", spec.name)),
    }
}

fn tensor_from_ort(ty: TensorElementType, value: &DynValue) -> Result<Tensor, String> {
    let failed = |error: ort::Error| format!("reading onnxruntime's output: {error}");
    macro_rules! extract {
        ($t:ty, $variant:ident) => {{
            let (shape, data) = value.try_extract_tensor::<$t>().map_err(failed)?;
            (shape.iter().map(|&d| d as usize).collect::<Vec<usize>>(), TensorData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match ty {
        TensorElementType::Bool => extract!(bool, Bool),
        TensorElementType::Uint8 => extract!(u8, Uint8),
        TensorElementType::Uint16 => extract!(u16, Uint16),
        TensorElementType::Uint32 => extract!(u32, Uint32),
        TensorElementType::Uint64 => extract!(u64, Uint64),
        TensorElementType::Int8 => extract!(i8, Int8),
        TensorElementType::Int16 => extract!(i16, Int16),
        TensorElementType::Int32 => extract!(i32, Int32),
        TensorElementType::Int64 => extract!(i64, Int64),
        TensorElementType::Float32 => extract!(f32, Fp32),
        TensorElementType::Float64 => extract!(f64, Fp64),
        TensorElementType::Float16 => {
            let (shape, data) = value.try_extract_tensor::<half::f16>().map_err(failed)?;
            (shape.iter().map(|&d| d as usize).collect(), TensorData::Fp16(data.iter().map(|v| v.to_bits()).collect()))
        }
        TensorElementType::String => {
            let (shape, data) = value.try_extract_strings().map_err(failed)?;
            (
                shape.iter().map(|&d| d as usize).collect(),
                TensorData::Bytes(data.into_iter().map(String::into_bytes).collect()),
            )
        }
        other => return Err(format!("onnxruntime answered a {other:?} tensor, which Keelson cannot serve")),
    };
    Tensor::new(shape, data).map_err(|error| error.to_string())
}

/// A ZipMap's sequence of {class: probability} maps, served as the FP32 [N, classes] matrix its
/// signature declares, columns in the order of its class labels (as the native runtime does).
fn zipmap_from_ort(spec: &TensorSpec, value: &DynValue) -> Result<Tensor, String> {
    let labels = spec.class_labels.as_deref().unwrap_or_default();
    let column: HashMap<&str, usize> = labels.iter().enumerate().map(|(i, label)| (label.as_str(), i)).collect();
    let failed = |error: ort::Error| format!("reading onnxruntime's output `{}`: {error}", spec.name);
    let rows = value.try_extract_sequence::<DynMapValueType>().map_err(failed)?;
    let mut data = vec![0f32; rows.len() * labels.len()];
    for (row, map) in rows.iter().enumerate() {
        let pairs: Vec<(String, f32)> = match map.try_extract_key_values::<i64, f32>() {
            Ok(pairs) => pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            Err(_) => map.try_extract_key_values::<String, f32>().map_err(failed)?,
        };
        for (key, probability) in pairs {
            let index = column
                .get(key.as_str())
                .ok_or_else(|| format!("output `{}` has class `{key}`, which its ZipMap does not list", spec.name))?;
            data[row * labels.len() + index] = probability;
        }
    }
    Tensor::new(vec![rows.len(), labels.len()], TensorData::Fp32(data)).map_err(|error| error.to_string())
}
