//! The PostgreSQL source: a query's rows, streamed over the simple-query protocol (every value
//! arrives as text), typed by the columns' PostgreSQL types and written to Parquet in batches.

use crate::error::DataError;
use futures::StreamExt;
use keelson_egress::EgressPolicy;
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Column, ConnectOptions, Row, TypeInfo};
use std::path::{Path, PathBuf};

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
    fn rows(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    /// The rows gathered so far, leaving this batch empty with the same columns.
    fn drain(&mut self) -> Batch {
        let empty = vec![Vec::new(); self.names.len()];
        Batch {
            names: self.names.clone(),
            types: self.types.clone(),
            values: std::mem::replace(&mut self.values, empty),
        }
    }

    fn into_frame(self) -> Result<DataFrame, DataError> {
        let mut columns = Vec::with_capacity(self.names.len());
        for ((name, dtype), values) in self.names.iter().zip(&self.types).zip(self.values) {
            let text = Series::new(name.as_str().into(), values);
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

/// The scratch Parquet file; typing and encoding a batch run on a blocking thread.
struct ParquetSink {
    target: PathBuf,
    writer: Option<BatchedWriter<std::fs::File>>,
}

impl ParquetSink {
    async fn write(&mut self, batch: Batch) -> Result<(), DataError> {
        let target = self.target.clone();
        let writer = self.writer.take();
        let writer = tokio::task::spawn_blocking(move || -> Result<BatchedWriter<std::fs::File>, DataError> {
            let frame = batch.into_frame()?;
            let mut writer = match writer {
                Some(writer) => writer,
                None => ParquetWriter::new(std::fs::File::create(&target)?).batched(frame.schema())?,
            };
            writer.write_batch(&frame)?;
            Ok(writer)
        })
        .await
        .map_err(|e| DataError::Internal(format!("postgres source writer: {e}")))??;
        self.writer = Some(writer);
        Ok(())
    }

    async fn finish(self) -> Result<(), DataError> {
        let Some(writer) = self.writer else {
            return Err(DataError::invalid("the postgres source query returned no rows (and so no columns)"));
        };
        tokio::task::spawn_blocking(move || writer.finish().map(drop))
            .await
            .map_err(|e| DataError::Internal(format!("postgres source writer: {e}")))??;
        Ok(())
    }
}

/// Connection options whose host is an address the egress policy allows, resolved once here so
/// the driver cannot resolve the name again to somewhere else. Unix sockets are refused: they are
/// the server's own machine.
async fn checked_options(url: &str, egress: &EgressPolicy) -> Result<PgConnectOptions, DataError> {
    let options: PgConnectOptions = url.parse().map_err(|e| DataError::invalid(format!("postgres source url: {e}")))?;
    if options.get_socket().is_some() || options.get_host().starts_with('/') {
        return Err(DataError::invalid(
            "postgres source url names a unix socket; sources are reached over TCP through the egress policy",
        ));
    }
    let addresses = egress
        .resolve(options.get_host(), options.get_port())
        .await
        .map_err(|e| DataError::invalid(format!("postgres source: {e}")))?;
    let address = addresses.first().ok_or_else(|| DataError::invalid("postgres source host has no address"))?;
    Ok(options.host(&address.ip().to_string()))
}

pub async fn export(
    url: &str,
    query: &str,
    batch_rows: usize,
    target: &Path,
    egress: &EgressPolicy,
) -> Result<(), DataError> {
    let options = checked_options(url, egress).await?;
    let timed_out = |what: &str| DataError::invalid(format!("the postgres source timed out {what}"));
    let mut connection = tokio::time::timeout(egress.connect_timeout(), options.connect())
        .await
        .map_err(|_| timed_out("connecting"))?
        .map_err(|e| DataError::invalid(format!("could not connect to the postgres source: {e}")))?;
    let mut rows = sqlx::raw_sql(query).fetch(&mut connection);
    let mut batch: Option<Batch> = None;
    let mut sink = ParquetSink { target: target.to_path_buf(), writer: None };
    // A source that stops sending holds a worker; each row must come within the request timeout.
    while let Some(row) =
        tokio::time::timeout(egress.request_timeout(), rows.next()).await.map_err(|_| timed_out("sending rows"))?
    {
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
        if current.rows() >= batch_rows {
            let full = current.drain();
            sink.write(full).await?;
        }
    }
    drop(rows);
    if let Some(rest) = batch.filter(|b| b.rows() > 0) {
        sink.write(rest).await?;
    }
    sink.finish().await
}
