//! The dtype names users write in sources, recipes and expectations, and how Keelson renders
//! the engine's types in schemas and profiles.

use crate::error::DataError;
use polars::prelude::*;
use serde_json::{json, Value};

/// The names users may write, in the order error messages list them.
pub const DTYPE_NAMES: &[&str] = &[
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "string",
    "date", "datetime",
];

pub fn parse_dtype(name: &str) -> Result<DataType, DataError> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "bool" | "boolean" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" | "int" | "integer" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" | "float" | "double" => DataType::Float64,
        "string" | "str" | "utf8" => DataType::String,
        "date" => DataType::Date,
        "datetime" | "timestamp" => DataType::Datetime(TimeUnit::Microseconds, None),
        other => {
            return Err(DataError::invalid(format!(
                "unknown dtype `{other}`; expected one of {}",
                DTYPE_NAMES.join(", ")
            )))
        }
    })
}

/// The user-facing name of an engine type (`int64`, `datetime`, …).
pub fn dtype_name(dtype: &DataType) -> String {
    match dtype {
        DataType::Boolean => "bool".into(),
        DataType::String => "string".into(),
        DataType::Date => "date".into(),
        DataType::Datetime(_, _) => "datetime".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        other => format!("{other}").to_ascii_lowercase(),
    }
}

pub fn is_numeric(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric()
}

pub fn is_temporal(dtype: &DataType) -> bool {
    matches!(dtype, DataType::Date | DataType::Datetime(_, _))
}

/// A physical value of a temporal column (days or time units since the epoch) as ISO 8601.
pub fn render_temporal(dtype: &DataType, physical: f64) -> String {
    let scalar = match dtype {
        DataType::Date => AnyValue::Date(physical as i32),
        DataType::Datetime(unit, _) => AnyValue::Datetime(physical as i64, *unit, None),
        _ => return format!("{physical}"),
    };
    format!("{scalar}")
}

/// The schema as stored with a version: `[{"name", "dtype", "nullable"}]`.
pub fn schema_json(schema: &Schema) -> Value {
    Value::Array(
        schema
            .iter()
            .map(|(name, dtype)| json!({"name": name.as_str(), "dtype": dtype_name(dtype), "nullable": true}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for name in DTYPE_NAMES {
            let dtype = parse_dtype(name).unwrap();
            assert_eq!(&dtype_name(&dtype), name, "{dtype:?}");
        }
        let error = parse_dtype("decimal").unwrap_err().to_string();
        assert!(error.contains("decimal") && error.contains("float64"), "{error}");
    }
}
