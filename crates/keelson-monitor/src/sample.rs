//! Column samples: the non-missing values of each column of a reference or current data set,
//! read from a dataset version's Parquet file one column at a time (so memory holds two columns,
//! not two tables) or built from collected traffic.
//!
//! Missing means null, NaN or an infinity, as in Evidently (which turns infinities into NaN and
//! drops them); each kind is counted so reports and quality signals can show them.

use crate::error::MonitorError;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a column holds, which decides the drift methods that apply.
pub use crate::stats::method::ColumnKind;

/// The non-missing values of a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Values {
    Numeric(Vec<f64>),
    /// Categories and text, as strings.
    Strings(Vec<String>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Numeric(v) => v.len(),
            Values::Strings(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One column of one side.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSample {
    pub name: String,
    pub kind: ColumnKind,
    pub values: Values,
    /// Rows in the data set, missing ones included.
    pub rows: u64,
    pub nulls: u64,
    pub nans: u64,
    pub infinities: u64,
    /// Values of the wrong type for the column (text sent for a numeric feature), left out of
    /// `values` and counted in `rows`.
    pub type_errors: u64,
}

impl ColumnSample {
    /// Builds a numeric sample from optional values, dropping and counting what is missing.
    pub fn numeric(name: &str, values: impl IntoIterator<Item = Option<f64>>) -> ColumnSample {
        let mut sample = ColumnSample::empty(name, ColumnKind::Numeric, Values::Numeric(Vec::new()));
        let mut kept = Vec::new();
        for value in values {
            sample.rows += 1;
            match value {
                None => sample.nulls += 1,
                Some(v) if v.is_nan() => sample.nans += 1,
                Some(v) if v.is_infinite() => sample.infinities += 1,
                Some(v) => kept.push(v),
            }
        }
        sample.values = Values::Numeric(kept);
        sample
    }

    /// Builds a categorical (or text) sample from optional strings.
    pub fn strings(name: &str, kind: ColumnKind, values: impl IntoIterator<Item = Option<String>>) -> ColumnSample {
        let mut sample = ColumnSample::empty(name, kind, Values::Strings(Vec::new()));
        let mut kept = Vec::new();
        for value in values {
            sample.rows += 1;
            match value {
                None => sample.nulls += 1,
                Some(v) => kept.push(v),
            }
        }
        sample.values = Values::Strings(kept);
        sample
    }

    fn empty(name: &str, kind: ColumnKind, values: Values) -> ColumnSample {
        ColumnSample { name: name.to_string(), kind, values, rows: 0, nulls: 0, nans: 0, infinities: 0, type_errors: 0 }
    }

    /// Share of rows without a usable value (null, NaN or infinite); None for an empty sample.
    pub fn missing_share(&self) -> Option<f64> {
        (self.rows > 0).then(|| (self.nulls + self.nans + self.infinities) as f64 / self.rows as f64)
    }
}

/// A column of a Parquet file: its name, the kind it is compared as, and its dtype's name.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetColumn {
    pub name: String,
    /// None for columns drift does not compare (dates, times, nested types).
    pub kind: Option<ColumnKind>,
    pub dtype: String,
}

/// The kind a column of this dtype is compared as; declared text columns are text.
pub fn kind_of(dtype: &DataType, is_text: bool) -> Option<ColumnKind> {
    if dtype.is_primitive_numeric() {
        Some(ColumnKind::Numeric)
    } else if matches!(dtype, DataType::String | DataType::Boolean | DataType::Categorical(_, _) | DataType::Enum(_, _))
    {
        Some(if is_text && matches!(dtype, DataType::String) { ColumnKind::Text } else { ColumnKind::Categorical })
    } else {
        None
    }
}

fn scan(path: &Path) -> Result<LazyFrame, MonitorError> {
    let path = PlRefPath::try_from_path(path).map_err(MonitorError::engine)?;
    LazyFrame::scan_parquet(path, ScanArgsParquet::default()).map_err(MonitorError::engine)
}

/// The columns of a Parquet file, in file order.
pub fn parquet_columns(path: &Path, text_columns: &[String]) -> Result<Vec<ParquetColumn>, MonitorError> {
    let schema = scan(path)?.collect_schema().map_err(MonitorError::engine)?;
    Ok(schema
        .iter()
        .map(|(name, dtype)| ParquetColumn {
            name: name.to_string(),
            kind: kind_of(dtype, text_columns.iter().any(|t| t == name.as_str())),
            dtype: dtype.to_string(),
        })
        .collect())
}

/// Reads one column of a Parquet file as a sample of the given kind.
pub fn read_parquet_column(path: &Path, column: &str, kind: ColumnKind) -> Result<ColumnSample, MonitorError> {
    // Read eagerly on the calling thread: columns are already read in parallel, one per thread,
    // and the lazy engine's own tasks and buffers nearly doubled the memory a read takes.
    let file =
        std::fs::File::open(path).map_err(|e| MonitorError::Internal(format!("reading {}: {e}", path.display())))?;
    let frame = ParquetReader::new(file)
        .with_columns(Some(vec![column.to_string()]))
        .read_parallel(ParallelStrategy::None)
        .finish()
        .map_err(MonitorError::engine)?;
    let series = frame
        .select_at_idx(0)
        .ok_or_else(|| MonitorError::invalid(format!("column `{column}` is not in the data")))?
        .as_materialized_series()
        .clone();
    series_sample(column, kind, &series)
}

/// A Polars series as a sample: numbers as f64, everything else as its string form.
pub fn series_sample(name: &str, kind: ColumnKind, series: &Series) -> Result<ColumnSample, MonitorError> {
    match kind {
        ColumnKind::Numeric => {
            let floats = series.cast(&DataType::Float64).map_err(MonitorError::engine)?;
            let floats = floats.f64().map_err(MonitorError::engine)?;
            if floats.null_count() == 0 {
                // The common case, copied chunk by chunk instead of value by value.
                let mut values = Vec::with_capacity(floats.len());
                for array in floats.downcast_iter() {
                    values.extend_from_slice(array.values());
                }
                if values.iter().fold(true, |finite, v| finite & v.is_finite()) {
                    let rows = values.len() as u64;
                    let mut sample = ColumnSample::empty(name, ColumnKind::Numeric, Values::Numeric(values));
                    sample.rows = rows;
                    return Ok(sample);
                }
            }
            Ok(ColumnSample::numeric(name, floats.iter()))
        }
        ColumnKind::Categorical | ColumnKind::Text => {
            let strings = series.cast(&DataType::String).map_err(MonitorError::engine)?;
            let strings = strings.str().map_err(MonitorError::engine)?;
            Ok(ColumnSample::strings(name, kind, strings.iter().map(|s| s.map(str::to_string))))
        }
    }
}

/// A dataset version's Parquet file as a column source: columns are read one at a time.
pub struct ParquetSource {
    path: std::path::PathBuf,
    columns: Vec<(String, Option<ColumnKind>)>,
}

impl ParquetSource {
    pub fn open(path: std::path::PathBuf, text_columns: &[String]) -> Result<ParquetSource, MonitorError> {
        let columns = parquet_columns(&path, text_columns)?.into_iter().map(|c| (c.name, c.kind)).collect();
        Ok(ParquetSource { path, columns })
    }
}

impl crate::drift::ColumnSource for ParquetSource {
    fn columns(&self) -> Vec<(String, Option<ColumnKind>)> {
        self.columns.clone()
    }

    fn read(&self, name: &str, kind: ColumnKind) -> Result<ColumnSample, MonitorError> {
        read_parquet_column(&self.path, name, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_are_counted_by_kind_and_dropped() {
        let sample = ColumnSample::numeric("x", [Some(1.0), None, Some(f64::NAN), Some(f64::INFINITY), Some(2.0)]);
        assert_eq!(sample.values, Values::Numeric(vec![1.0, 2.0]));
        assert_eq!((sample.rows, sample.nulls, sample.nans, sample.infinities), (5, 1, 1, 1));
        assert_eq!(sample.missing_share(), Some(0.6));
        assert_eq!(ColumnSample::numeric("y", []).missing_share(), None);
    }

    #[test]
    fn parquet_columns_are_read_one_at_a_time_with_their_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut frame = df!(
            "x" => [Some(1.5), None, Some(3.0)],
            "c" => [Some("a"), Some("b"), None],
            "t" => ["hello world", "good day", "bye"],
            "b" => [true, false, true],
        )
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut frame).unwrap();
        let columns = parquet_columns(&path, &["t".to_string()]).unwrap();
        let kinds: Vec<_> = columns.iter().map(|c| (c.name.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("x", Some(ColumnKind::Numeric)),
                ("c", Some(ColumnKind::Categorical)),
                ("t", Some(ColumnKind::Text)),
                ("b", Some(ColumnKind::Categorical))
            ]
        );
        let x = read_parquet_column(&path, "x", ColumnKind::Numeric).unwrap();
        assert_eq!((x.values, x.nulls), (Values::Numeric(vec![1.5, 3.0]), 1));
        let b = read_parquet_column(&path, "b", ColumnKind::Categorical).unwrap();
        assert_eq!(b.values, Values::Strings(vec!["true".into(), "false".into(), "true".into()]));
        assert!(read_parquet_column(&path, "missing", ColumnKind::Numeric).is_err());
    }
}
