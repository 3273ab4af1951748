//! Initializers stored outside the model file (ONNX "external data", which `mlflow.onnx`
//! writes by default) are read from the files that came with the model and put back inline, so
//! every later step sees a self-contained model. Locations are looked up among those files by
//! name only: a model cannot make Keelson read anything else.

use super::OnnxError;
use std::collections::HashMap;
use tract_onnx::pb::{GraphProto, ModelProto, TensorProto};

/// `ONNX TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: i32 = 1;

/// Inlines every external initializer of the model (subgraphs included).
pub fn inline_external_data(model: &mut ModelProto, files: &HashMap<String, Vec<u8>>) -> Result<(), OnnxError> {
    if let Some(graph) = model.graph.as_mut() {
        inline_graph(graph, files)?;
    }
    Ok(())
}

fn inline_graph(graph: &mut GraphProto, files: &HashMap<String, Vec<u8>>) -> Result<(), OnnxError> {
    for tensor in &mut graph.initializer {
        inline_tensor(tensor, files)?;
    }
    for node in &mut graph.node {
        for attribute in &mut node.attribute {
            if let Some(tensor) = attribute.t.as_mut() {
                inline_tensor(tensor, files)?;
            }
            if let Some(subgraph) = attribute.g.as_mut() {
                inline_graph(subgraph, files)?;
            }
            for subgraph in &mut attribute.graphs {
                inline_graph(subgraph, files)?;
            }
        }
    }
    Ok(())
}

fn inline_tensor(tensor: &mut TensorProto, files: &HashMap<String, Vec<u8>>) -> Result<(), OnnxError> {
    if tensor.data_location != Some(EXTERNAL) {
        return Ok(());
    }
    let entry = |key: &str| tensor.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
    let invalid = |message: String| OnnxError::Invalid(format!("initializer `{}`: {message}", tensor.name));
    let location = entry("location").ok_or_else(|| invalid("external data without a location".into()))?;
    let name = location.trim_start_matches("./");
    let bytes = files
        .get(name)
        .ok_or_else(|| invalid(format!("its data is in `{location}`, which is not among the model's files")))?;
    let number = |key: &str| -> Result<Option<usize>, OnnxError> {
        entry(key)
            .map(|v| v.parse::<usize>().map_err(|_| invalid(format!("external data {key} `{v}` is not a number"))))
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?.unwrap_or(bytes.len().saturating_sub(offset));
    let end = offset.checked_add(length).filter(|end| *end <= bytes.len()).ok_or_else(|| {
        invalid(format!("external data {offset}..{offset}+{length} is outside `{location}` ({} bytes)", bytes.len()))
    })?;
    tensor.raw_data = bytes[offset..end].to_vec();
    tensor.external_data.clear();
    tensor.data_location = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::StringStringEntryProto;

    fn external(location: &str, offset: &str, length: &str) -> TensorProto {
        let entry = |key: &str, value: &str| StringStringEntryProto { key: key.into(), value: value.into() };
        TensorProto {
            name: "w".into(),
            data_location: Some(EXTERNAL),
            external_data: vec![entry("location", location), entry("offset", offset), entry("length", length)],
            ..TensorProto::default()
        }
    }

    #[test]
    fn external_bytes_are_inlined() {
        let files = HashMap::from([("w.data".to_string(), vec![0u8, 1, 2, 3, 4, 5])]);
        let mut tensor = external("w.data", "2", "3");
        inline_tensor(&mut tensor, &files).unwrap();
        assert_eq!(tensor.raw_data, vec![2, 3, 4]);
        assert_eq!(tensor.data_location, None);
    }

    #[test]
    fn missing_files_and_bad_ranges_are_refused() {
        let files = HashMap::from([("w.data".to_string(), vec![0u8; 4])]);
        let error = inline_tensor(&mut external("../etc/passwd", "0", "4"), &files).unwrap_err();
        assert!(error.to_string().contains("not among the model's files"), "{error}");
        let error = inline_tensor(&mut external("w.data", "2", "4"), &files).unwrap_err();
        assert!(error.to_string().contains("outside"), "{error}");
        let error = inline_tensor(&mut external("w.data", "x", "4"), &files).unwrap_err();
        assert!(error.to_string().contains("not a number"), "{error}");
    }
}
