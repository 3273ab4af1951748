//! Open Inference Protocol (KServe V2) request and response bodies, JSON and with the binary
//! tensor extension: a JSON header of `Inference-Header-Content-Length` bytes followed by raw
//! little-endian tensors in input order, each sized by its `binary_data_size` parameter. BYTES
//! elements are a 4-byte little-endian length and the bytes.

use super::json_tensor::{elements_from_json, elements_to_json};
use super::ProtocolError;
use crate::signature::NamedTensor;
use crate::tensor::{DataType, Tensor, TensorData};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Header naming the length of the JSON part of a binary-extension body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    pub id: Option<String>,
    pub inputs: Vec<NamedTensor>,
    pub outputs: OutputSelection,
}

/// Which outputs to answer, and which of them as binary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputSelection {
    /// Named outputs in the order asked; empty means every output.
    pub named: Vec<(String, bool)>,
    /// Binary for outputs not named individually (`binary_data_output`).
    pub binary_default: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRequest {
    #[serde(default)]
    id: Option<String>,
    /// Not in the Open Inference Protocol's request object, but the KServe Python client sends
    /// both; the URL names the model, so they are accepted and not used.
    #[serde(default, rename = "model_name")]
    _model_name: Option<Value>,
    #[serde(default, rename = "model_version")]
    _model_version: Option<Value>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<WireInput>,
    #[serde(default)]
    outputs: Option<Vec<WireOutput>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// Reads a request body. `header_length` is the `Inference-Header-Content-Length` value when
/// the client sent one (binary extension); otherwise the whole body is JSON.
pub fn parse_infer_request(body: &[u8], header_length: Option<&str>) -> Result<InferRequest, ProtocolError> {
    let json_length = match header_length {
        None => body.len(),
        Some(text) => {
            let length: usize = text.trim().parse().map_err(|_| {
                ProtocolError::new(format!("Inference-Header-Content-Length `{text}` is not a byte count"))
            })?;
            if length > body.len() {
                return Err(ProtocolError::new(format!(
                    "Inference-Header-Content-Length is {length} but the body has only {} bytes",
                    body.len()
                )));
            }
            length
        }
    };
    let (header, mut binary) = body.split_at(json_length);
    let wire: WireRequest = serde_json::from_slice(header)
        .map_err(|error| ProtocolError::new(format!("the request is not a valid inference request: {error}")))?;
    let mut inputs = Vec::with_capacity(wire.inputs.len());
    for input in wire.inputs {
        inputs.push(read_input(input, &mut binary)?);
    }
    if !binary.is_empty() {
        return Err(ProtocolError::new(format!(
            "{} bytes of binary data follow the inputs that no input's binary_data_size accounts for",
            binary.len()
        )));
    }
    let binary_default = flag(wire.parameters.as_ref(), "binary_data_output", "request")?;
    let mut named = Vec::new();
    for output in wire.outputs.unwrap_or_default() {
        let binary = match output.parameters.as_ref().and_then(|p| p.get("binary_data")) {
            None => binary_default,
            Some(_) => flag(output.parameters.as_ref(), "binary_data", &format!("output `{}`", output.name))?,
        };
        named.push((output.name, binary));
    }
    Ok(InferRequest { id: wire.id, inputs, outputs: OutputSelection { named, binary_default } })
}

fn flag(parameters: Option<&Map<String, Value>>, key: &str, what: &str) -> Result<bool, ProtocolError> {
    match parameters.and_then(|p| p.get(key)) {
        None => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(other) => Err(ProtocolError::new(format!("{what} parameter `{key}` must be true or false, not {other}"))),
    }
}

fn read_input(input: WireInput, binary: &mut &[u8]) -> Result<NamedTensor, ProtocolError> {
    let what = format!("input `{}`", input.name);
    let datatype = DataType::parse(&input.datatype)
        .ok_or_else(|| ProtocolError::new(format!("{what}: unknown datatype `{}`", input.datatype)))?;
    let mut shape = Vec::with_capacity(input.shape.len());
    for dim in &input.shape {
        shape
            .push(usize::try_from(*dim).map_err(|_| {
                ProtocolError::new(format!("{what}: shape {:?} has a negative dimension", input.shape))
            })?);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, dim| acc.checked_mul(*dim))
        .ok_or_else(|| ProtocolError::new(format!("{what}: shape {:?} is too large", input.shape)))?;
    let binary_size = match input.parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
        None => None,
        Some(value) => Some(value.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
            ProtocolError::new(format!("{what}: binary_data_size must be a byte count, not {value}"))
        })?),
    };
    let data = match (binary_size, &input.data) {
        (Some(_), Some(_)) => {
            return Err(ProtocolError::new(format!("{what} has both `data` and binary_data_size")));
        }
        (None, None) => return Err(ProtocolError::new(format!("{what} has no `data` and no binary_data_size"))),
        (None, Some(value)) => elements_from_json(value, datatype, &what)?,
        (Some(size), None) => {
            if size > binary.len() {
                return Err(ProtocolError::new(format!(
                    "{what}: binary_data_size is {size} but only {} bytes of binary data remain",
                    binary.len()
                )));
            }
            let (bytes, rest) = binary.split_at(size);
            *binary = rest;
            decode_binary(bytes, datatype, count, &what)?
        }
    };
    if data.len() != count {
        return Err(ProtocolError::new(format!(
            "{what}: shape {:?} holds {count} elements but {} were given",
            input.shape,
            data.len()
        )));
    }
    Ok(NamedTensor { name: input.name, tensor: Tensor { shape, data } })
}

fn decode_binary(bytes: &[u8], datatype: DataType, count: usize, what: &str) -> Result<TensorData, ProtocolError> {
    let Some(size) = datatype.element_size() else {
        return decode_bytes_elements(bytes, what);
    };
    if Some(bytes.len()) != count.checked_mul(size) {
        return Err(ProtocolError::new(format!(
            "{what}: binary_data_size is {} bytes but {count} {datatype} elements take {}",
            bytes.len(),
            count.saturating_mul(size)
        )));
    }
    macro_rules! le {
        ($variant:ident, $ty:ty) => {
            TensorData::$variant(
                bytes
                    .chunks_exact(size)
                    .map(|chunk| {
                        let mut raw = [0u8; std::mem::size_of::<$ty>()];
                        raw.copy_from_slice(chunk);
                        <$ty>::from_le_bytes(raw)
                    })
                    .collect(),
            )
        };
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(bytes.iter().map(|b| *b != 0).collect()),
        DataType::Uint8 => TensorData::Uint8(bytes.to_vec()),
        DataType::Int8 => TensorData::Int8(bytes.iter().map(|b| i8::from_le_bytes([*b])).collect()),
        DataType::Uint16 => le!(Uint16, u16),
        DataType::Int16 => le!(Int16, i16),
        DataType::Fp16 => le!(Fp16, u16),
        DataType::Uint32 => le!(Uint32, u32),
        DataType::Int32 => le!(Int32, i32),
        DataType::Fp32 => le!(Fp32, f32),
        DataType::Uint64 => le!(Uint64, u64),
        DataType::Int64 => le!(Int64, i64),
        DataType::Fp64 => le!(Fp64, f64),
        DataType::Bytes => return decode_bytes_elements(bytes, what),
    })
}

fn decode_bytes_elements(mut bytes: &[u8], what: &str) -> Result<TensorData, ProtocolError> {
    let mut elements = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 4 {
            return Err(ProtocolError::new(format!("{what}: a BYTES element's 4-byte length prefix is cut off")));
        }
        let length = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let rest = &bytes[4..];
        if length > rest.len() {
            return Err(ProtocolError::new(format!(
                "{what}: a BYTES element claims {length} bytes but only {} remain",
                rest.len()
            )));
        }
        elements.push(rest[..length].to_vec());
        bytes = &rest[length..];
    }
    Ok(TensorData::Bytes(elements))
}

fn encode_binary(data: &TensorData) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|x| to(*x)).collect()
    }
    match data {
        TensorData::Bool(v) => v.iter().map(|b| u8::from(*b)).collect(),
        TensorData::Uint8(v) => v.clone(),
        TensorData::Int8(v) => le(v, i8::to_le_bytes),
        TensorData::Uint16(v) | TensorData::Fp16(v) => le(v, u16::to_le_bytes),
        TensorData::Int16(v) => le(v, i16::to_le_bytes),
        TensorData::Uint32(v) => le(v, u32::to_le_bytes),
        TensorData::Int32(v) => le(v, i32::to_le_bytes),
        TensorData::Fp32(v) => le(v, f32::to_le_bytes),
        TensorData::Uint64(v) => le(v, u64::to_le_bytes),
        TensorData::Int64(v) => le(v, i64::to_le_bytes),
        TensorData::Fp64(v) => le(v, f64::to_le_bytes),
        TensorData::Bytes(v) => {
            let mut out = Vec::new();
            for element in v {
                out.extend_from_slice(&(element.len() as u32).to_le_bytes());
                out.extend_from_slice(element);
            }
            out
        }
    }
}

/// A response ready to send: the body, and the JSON header's length when binary data follows
/// (to be sent as `Inference-Header-Content-Length`).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedResponse {
    pub body: Vec<u8>,
    pub header_length: Option<usize>,
}

/// Builds the response for `outputs` (every output of the model, by name, in its order).
pub fn encode_infer_response(
    model_name: &str,
    model_version: Option<&str>,
    id: Option<&str>,
    outputs: Vec<NamedTensor>,
    selection: &OutputSelection,
) -> Result<EncodedResponse, ProtocolError> {
    let mut chosen: Vec<(NamedTensor, bool)> = Vec::new();
    if selection.named.is_empty() {
        chosen.extend(outputs.into_iter().map(|output| (output, selection.binary_default)));
    } else {
        let mut outputs: Vec<Option<NamedTensor>> = outputs.into_iter().map(Some).collect();
        for (name, binary) in &selection.named {
            let position = outputs.iter().position(|o| o.as_ref().is_some_and(|o| &o.name == name));
            match position.and_then(|p| outputs[p].take()) {
                Some(output) => chosen.push((output, *binary)),
                None => return Err(ProtocolError::new(format!("unknown or repeated output `{name}` requested"))),
            }
        }
    }
    let mut binary_part = Vec::new();
    let mut wire_outputs = Vec::with_capacity(chosen.len());
    for (output, binary) in chosen {
        let shape: Vec<usize> = output.tensor.shape.clone();
        if binary {
            let bytes = encode_binary(&output.tensor.data);
            wire_outputs.push(json!({
                "name": output.name,
                "datatype": output.tensor.datatype().as_str(),
                "shape": shape,
                "parameters": {"binary_data_size": bytes.len()},
            }));
            binary_part.extend_from_slice(&bytes);
        } else {
            wire_outputs.push(json!({
                "name": output.name,
                "datatype": output.tensor.datatype().as_str(),
                "shape": shape,
                "data": elements_to_json(&output.tensor.data),
            }));
        }
    }
    let mut response = json!({"model_name": model_name, "outputs": wire_outputs});
    if let Some(version) = model_version {
        response["model_version"] = json!(version);
    }
    if let Some(id) = id {
        response["id"] = json!(id);
    }
    let mut body = serde_json::to_vec(&response).map_err(|error| ProtocolError::new(error.to_string()))?;
    if binary_part.is_empty() {
        return Ok(EncodedResponse { body, header_length: None });
    }
    let header_length = body.len();
    body.extend_from_slice(&binary_part);
    Ok(EncodedResponse { body, header_length: Some(header_length) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_body(header: Value, tensors: &[&[u8]]) -> (Vec<u8>, String) {
        let mut body = serde_json::to_vec(&header).unwrap();
        let length = body.len().to_string();
        for bytes in tensors {
            body.extend_from_slice(bytes);
        }
        (body, length)
    }

    #[test]
    fn json_inputs_are_read() {
        let body = json!({"id": "7", "inputs": [
            {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4.5]]},
            {"name": "s", "shape": [1], "datatype": "BYTES", "data": ["hi"]}
        ], "outputs": [{"name": "y"}]});
        let request = parse_infer_request(&serde_json::to_vec(&body).unwrap(), None).unwrap();
        assert_eq!(request.id.as_deref(), Some("7"));
        assert_eq!(request.inputs[0].tensor, Tensor::f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.5]).unwrap());
        assert_eq!(request.inputs[1].tensor.data, TensorData::Bytes(vec![b"hi".to_vec()]));
        assert_eq!(request.outputs.named, vec![("y".to_string(), false)]);
    }

    #[test]
    fn binary_inputs_are_read_in_order() {
        let floats: Vec<u8> = [1.0f32, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut strings = Vec::new();
        for s in [&b"ab"[..], &b""[..]] {
            strings.extend_from_slice(&(s.len() as u32).to_le_bytes());
            strings.extend_from_slice(s);
        }
        let header = json!({"inputs": [
            {"name": "x", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
            {"name": "s", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": strings.len()}}
        ], "parameters": {"binary_data_output": true}});
        let (body, length) = binary_body(header, &[&floats, &strings]);
        let request = parse_infer_request(&body, Some(&length)).unwrap();
        assert_eq!(request.inputs[0].tensor, Tensor::f32(vec![1, 2], vec![1.0, -2.0]).unwrap());
        assert_eq!(request.inputs[1].tensor.data, TensorData::Bytes(vec![b"ab".to_vec(), vec![]]));
        assert!(request.outputs.binary_default);
    }

    #[test]
    fn the_kserve_clients_model_fields_are_accepted_and_other_unknown_fields_refused() {
        let body = json!({"model_name": "m", "model_version": "1", "id": "r1",
            "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}]});
        let request = parse_infer_request(&serde_json::to_vec(&body).unwrap(), None).unwrap();
        assert_eq!(request.inputs[0].tensor, Tensor::f32(vec![1, 2], vec![1.0, 2.0]).unwrap());
        let typo = json!({"input": []});
        assert!(parse_infer_request(&serde_json::to_vec(&typo).unwrap(), None)
            .unwrap_err()
            .0
            .contains("unknown field"));
    }

    #[test]
    fn malformed_binary_bodies_are_refused_with_a_reason() {
        let header = json!({"inputs": [
            {"name": "x", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]});
        let (body, _) = binary_body(header.clone(), &[&[0u8; 8]]);
        let error = |body: &[u8], length: Option<&str>| parse_infer_request(body, length).unwrap_err().0;
        assert!(error(&body, Some("99999")).contains("but the body has only"));
        assert!(error(&body, Some("abc")).contains("is not a byte count"));
        let (short, length) = binary_body(header.clone(), &[&[0u8; 4]]);
        assert!(error(&short, Some(&length)).contains("only 4 bytes of binary data remain"));
        let (long, length) = binary_body(header, &[&[0u8; 12]]);
        assert!(error(&long, Some(&length)).contains("4 bytes of binary data follow"));
        let wrong_size = json!({"inputs": [
            {"name": "x", "shape": [1, 3], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]});
        let (body, length) = binary_body(wrong_size, &[&[0u8; 8]]);
        assert!(error(&body, Some(&length)).contains("3 FP32 elements take 12"));
        let cut = json!({"inputs": [
            {"name": "s", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]});
        let (body, length) = binary_body(cut, &[&[9, 0, 0, 0, 1, 2]]);
        assert!(error(&body, Some(&length)).contains("claims 9 bytes"));
    }

    #[test]
    fn json_mistakes_are_refused_with_a_reason() {
        let error = |body: Value| parse_infer_request(&serde_json::to_vec(&body).unwrap(), None).unwrap_err().0;
        assert!(error(json!({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}))
            .contains("shape [3] holds 3 elements but 2 were given"));
        assert!(error(json!({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}))
            .contains("negative dimension"));
        assert!(error(json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}))
            .contains("unknown datatype `FLOAT`"));
        assert!(error(json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]})).contains("no `data`"));
        assert!(error(json!({"inputs": "x"})).contains("not a valid inference request"));
        assert!(parse_infer_request(b"{not json", None).is_err());
    }

    #[test]
    fn responses_mix_json_and_binary_outputs() {
        let outputs = vec![
            NamedTensor { name: "label".into(), tensor: Tensor::i64(vec![2], vec![1, 0]).unwrap() },
            NamedTensor { name: "p".into(), tensor: Tensor::f32(vec![2, 1], vec![0.25, 0.5]).unwrap() },
        ];
        let selection =
            OutputSelection { named: vec![("p".into(), true), ("label".into(), false)], binary_default: false };
        let encoded = encode_infer_response("m", Some("3"), Some("id-1"), outputs, &selection).unwrap();
        let length = encoded.header_length.unwrap();
        let header: Value = serde_json::from_slice(&encoded.body[..length]).unwrap();
        assert_eq!(header["model_version"], "3");
        assert_eq!(header["id"], "id-1");
        assert_eq!(header["outputs"][0]["name"], "p");
        assert_eq!(header["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(header["outputs"][1]["data"], json!([1, 0]));
        let tail: Vec<u8> = [0.25f32, 0.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(&encoded.body[length..], tail.as_slice());
        let unknown = OutputSelection { named: vec![("nope".into(), false)], binary_default: false };
        assert!(encode_infer_response("m", None, None, vec![], &unknown).is_err());
    }
}
