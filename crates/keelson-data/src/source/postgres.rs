//! The PostgreSQL source: a query's rows, streamed over the simple-query protocol (every value
//! arrives as text), typed by the columns' PostgreSQL types and written to Parquet in batches.

use crate::error::DataError;
use futures::StreamExt;
use polars::prelude::*;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Column, ConnectOptions, Row, TypeInfo};
use std::path::Path;

/// The engine type a PostgreSQL type becomes.
fn engine_type(pg_type: &str) -> DataType {
    match pg_type.to_ascii_uppercase().as_str() {
        "INT2" | "INT4" | "INT8" | "SMALLINT" | "INTEGER" | "BIGINT" => DataType::Int64,
        "FLOAT4" | "FLOAT8" | "REAL" | "DOUBLE PRECISION" | "NUMERIC" => DataType::Float64,
        "BOOL" | "BOOLEAN" => DataType::Boolean,
        "DATE" => DataType::Date,
        "TIMESTAMP" | "TIMESTAMPTZ" => DataType::Datetime(TimeUnit::Microseconds, None),
        _ => DataType::String,
    }
}

struct Batch {
    names: Vec<String>,
    types: Vec<DataType>,
    values: Vec<Vec<Option<String>>>,
}

impl Batch {
    fn take_frame(&mut self) -> Result<DataFrame, DataError> {
        let mut columns = Vec::with_capacity(self.names.len());
        for ((name, dtype), values) in self.names.iter().zip(&self.types).zip(self.values.iter_mut()) {
            let text = Series::new(name.as_str().into(), std::mem::take(values));
            let typed = match dtype {
                DataType::Boolean => {
                    let strings = text.str()?;
                    strings.iter().map(|v| v.map(|v| v == "t" || v == "true")).collect::<BooleanChunked>().into_series()
                }
                DataType::Datetime(_, _) => {
                    // Text like `2024-01-02 03:04:05[.ffffff][+00]`: drop any zone, ISO `T`.
                    let strings = text.str()?;
                    let cleaned: StringChunked = strings
                        .iter()
                        .map(|v| v.map(|v| v.split('+').next().unwrap_or(v).replacen(' ', "T", 1)))
                        .collect();
                    cleaned.into_series().strict_cast(dtype)?
                }
                DataType::String => text,
                other => text.strict_cast(other)?,
            };
            columns.push(typed.with_name(name.as_str().into()).into_column());
        }
        Ok(DataFrame::new_infer_height(columns)?)
    }
}

pub async fn export(url: &str, query: &str, batch_rows: usize, target: &Path) -> Result<(), DataError> {
    let options: PgConnectOptions = url.parse().map_err(|e| DataError::invalid(format!("postgres source url: {e}")))?;
    let mut connection = options
        .connect()
        .await
        .map_err(|e| DataError::invalid(format!("could not connect to the postgres source: {e}")))?;
    let mut rows = sqlx::raw_sql(query).fetch(&mut connection);
    let mut batch: Option<Batch> = None;
    let mut writer: Option<polars::io::parquet::write::BatchedWriter<std::fs::File>> = None;
    let mut wrote_any = false;
    while let Some(row) = rows.next().await {
        let row: PgRow = row.map_err(|e| DataError::invalid(format!("postgres source query failed: {e}")))?;
        let current = batch.get_or_insert_with(|| Batch {
            names: row.columns().iter().map(|c| c.name().to_string()).collect(),
            types: row.columns().iter().map(|c| engine_type(c.type_info().name())).collect(),
            values: vec![Vec::with_capacity(batch_rows); row.columns().len()],
        });
        for (index, values) in current.values.iter_mut().enumerate() {
            let value: Option<String> = row
                .try_get_unchecked(index)
                .map_err(|e| DataError::invalid(format!("postgres source column {index}: {e}")))?;
            values.push(value);
        }
        if current.values.first().map_or(0, Vec::len) >= batch_rows {
            let frame = current.take_frame()?;
            write_frame(&mut writer, target, &frame)?;
            wrote_any = true;
        }
    }
    drop(rows);
    if let Some(mut current) = batch {
        if current.values.first().is_some_and(|v| !v.is_empty()) || !wrote_any {
            let frame = current.take_frame()?;
            write_frame(&mut writer, target, &frame)?;
        }
    }
    match writer {
        Some(writer) => {
            writer.finish()?;
        }
        None => {
            return Err(DataError::invalid("the postgres source query returned no rows (and so no columns)"));
        }
    }
    Ok(())
}

fn write_frame(
    writer: &mut Option<polars::io::parquet::write::BatchedWriter<std::fs::File>>,
    target: &Path,
    frame: &DataFrame,
) -> Result<(), DataError> {
    if writer.is_none() {
        let file = std::fs::File::create(target)?;
        *writer = Some(ParquetWriter::new(file).batched(frame.schema())?);
    }
    if let Some(writer) = writer {
        writer.write_batch(frame)?;
    }
    Ok(())
}
