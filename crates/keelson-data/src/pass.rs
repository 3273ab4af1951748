//! The single streaming pass every new version goes through: the engine reads the source in
//! batches, and each batch updates the content digest, the profile and the expectation checks
//! and is appended to the version's Parquet file. Memory stays at a few batches whatever the
//! input size.

use crate::dtype::dtype_name;
use crate::error::DataError;
use crate::expectations::{CompiledSuite, ReferenceValues, Suite};
use crate::profile::{ColumnProfile, FrameProfile};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;

/// Rows per batch handed to the pass (and per Parquet row group).
const BATCH_ROWS: usize = 131_072;

/// A column's canonical content hash, independent of how rows were split into batches:
/// non-null values in row order, and separately the positions of the nulls.
struct ColumnDigest {
    values: Sha256,
    nulls: Sha256,
}

impl ColumnDigest {
    fn new() -> Self {
        Self { values: Sha256::new(), nulls: Sha256::new() }
    }

    fn feed(&mut self, series: &Series, offset: u64) -> Result<(), DataError> {
        if series.null_count() > 0 {
            for (row, valid) in series.is_not_null().iter().enumerate() {
                if valid == Some(false) {
                    self.nulls.update((offset + row as u64).to_le_bytes());
                }
            }
        }
        let mut buffer: Vec<u8> = Vec::with_capacity(series.len() * 8);
        match series.dtype() {
            DataType::String => {
                for value in series.str()?.iter().flatten() {
                    buffer.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    buffer.extend_from_slice(value.as_bytes());
                }
            }
            DataType::Boolean => buffer.extend(series.bool()?.iter().flatten().map(u8::from)),
            dtype if dtype.is_float() => {
                for array in series.cast(&DataType::Float64)?.f64()?.downcast_iter() {
                    for value in array.iter().flatten() {
                        buffer.extend_from_slice(&value.to_le_bytes());
                    }
                }
            }
            dtype if dtype.to_physical().is_integer() => {
                for array in series.to_physical_repr().cast(&DataType::Int64)?.i64()?.downcast_iter() {
                    for value in array.iter().flatten() {
                        buffer.extend_from_slice(&value.to_le_bytes());
                    }
                }
            }
            _ => {
                for value in series.cast(&DataType::String)?.str()?.iter().flatten() {
                    buffer.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    buffer.extend_from_slice(value.as_bytes());
                }
            }
        }
        self.values.update(&buffer);
        Ok(())
    }
}

struct ColumnState {
    profile: ColumnProfile,
    digest: ColumnDigest,
}

struct PassState {
    columns: Vec<ColumnState>,
    rows: u64,
    writer: Option<ParquetThread>,
    suite: Option<CompiledSuite>,
    failure: Option<DataError>,
}

/// Batches being encoded and compressed queue here, at most two deep, so Parquet encoding runs
/// beside the profile and the checks instead of after them, and memory stays bounded.
const WRITER_QUEUE: usize = 2;

/// The Parquet file, written on a thread of its own.
struct ParquetThread {
    sender: std::sync::mpsc::SyncSender<DataFrame>,
    handle: std::thread::JoinHandle<Result<(), DataError>>,
}

impl ParquetThread {
    fn start(path: &Path, schema: &Schema) -> Result<ParquetThread, DataError> {
        let mut writer: BatchedWriter<std::fs::File> = ParquetWriter::new(std::fs::File::create(path)?)
            // Level 1: most of zstd's ratio at a fraction of level 3's time (a quarter of the
            // ingest's CPU went to compression at the default).
            .with_compression(ParquetCompression::Zstd(polars_parquet::write::ZstdLevel::try_new(1).ok()))
            .batched(schema)?;
        let empty = DataFrame::empty_with_schema(schema);
        let (sender, receiver) = std::sync::mpsc::sync_channel::<DataFrame>(WRITER_QUEUE);
        let handle = std::thread::Builder::new().name("keelson-parquet".into()).spawn(move || {
            let mut wrote = false;
            for mut batch in receiver {
                batch.rechunk_mut_par();
                writer.write_batch(&batch)?;
                wrote = true;
            }
            if !wrote {
                writer.write_batch(&empty)?;
            }
            writer.finish()?;
            Ok(())
        })?;
        Ok(ParquetThread { sender, handle })
    }

    fn write(&self, batch: DataFrame) -> Result<(), DataError> {
        // A closed queue means the thread stopped on an error, which `finish` reports.
        let _ = self.sender.send(batch);
        Ok(())
    }

    fn finish(self) -> Result<(), DataError> {
        drop(self.sender);
        self.handle.join().map_err(|_| DataError::Internal("the parquet writer thread panicked".into()))?
    }
}

/// What the pass learned about the data.
pub struct PassOutput {
    pub schema: Schema,
    pub row_count: u64,
    pub profile: FrameProfile,
    /// `sha256:<hex>` of the schema and the canonical content.
    pub digest: String,
    pub suite: Option<CompiledSuite>,
}

impl PassState {
    fn absorb(&mut self, batch: DataFrame) -> Result<(), DataError> {
        let offset = self.rows;
        if let Some(writer) = &self.writer {
            // Columns are shared, not copied: the writer reads the same buffers.
            writer.write(batch.clone())?;
        }
        let series: Vec<&Series> = batch.columns().iter().map(|c| c.as_materialized_series()).collect();
        let results: Vec<Result<(), DataError>> = self
            .columns
            .par_iter_mut()
            .zip(series.par_iter())
            .map(|(state, column)| {
                state.profile.update(column)?;
                state.digest.feed(column, offset)
            })
            .collect();
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        if let Some(suite) = &mut self.suite {
            suite.observe(&batch, offset)?;
        }
        self.rows += batch_height(&series);
        Ok(())
    }
}

fn batch_height(series: &[&Series]) -> u64 {
    series.first().map_or(0, |s| s.len() as u64)
}

/// Streams `frame` once. With `parquet`, its rows are written there (zstd, one row group per
/// batch); with `suite`, row checks run on every batch. `context` names the input in errors.
pub fn run_pass(
    mut frame: LazyFrame,
    context: &str,
    parquet: Option<&Path>,
    suite: Option<(&Suite, &ReferenceValues)>,
) -> Result<PassOutput, DataError> {
    let schema = frame.collect_schema().map_err(|e| DataError::engine(context, e))?.as_ref().clone();
    let suite = suite.map(|(suite, references)| CompiledSuite::compile(suite, &schema, references)).transpose()?;
    let writer = parquet.map(|path| ParquetThread::start(path, &schema)).transpose()?;
    let columns = schema
        .iter()
        .map(|(_, dtype)| ColumnState { profile: ColumnProfile::new(dtype), digest: ColumnDigest::new() })
        .collect();
    let state = std::sync::Arc::new(Mutex::new(PassState { columns, rows: 0, writer, suite, failure: None }));
    let callback_state = state.clone();
    let callback = PlanCallback::new(move |batch: DataFrame| -> PolarsResult<bool> {
        let mut guard = callback_state.lock().map_err(|_| polars_err!(ComputeError: "pass state poisoned"))?;
        if guard.failure.is_some() {
            return Ok(true);
        }
        if let Err(error) = guard.absorb(batch) {
            guard.failure = Some(error);
            return Ok(true);
        }
        Ok(false)
    });
    let sink =
        frame.sink_batches(callback, true, NonZeroUsize::new(BATCH_ROWS)).map_err(|e| DataError::engine(context, e))?;
    sink.collect_with_engine(Engine::Streaming).map_err(|e| DataError::engine(context, e))?;
    let mut state = std::sync::Arc::try_unwrap(state)
        .map_err(|_| DataError::Internal("the engine kept the pass state".into()))?
        .into_inner()
        .map_err(|_| DataError::Internal("pass state poisoned".into()))?;
    let written = state.writer.take().map(ParquetThread::finish);
    if let Some(failure) = state.failure.take() {
        return Err(failure);
    }
    written.transpose()?;
    let mut digest = Sha256::new();
    let mut profile = FrameProfile { row_count: state.rows, ..FrameProfile::default() };
    for ((name, dtype), column) in schema.iter().zip(state.columns) {
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(dtype_name(dtype).as_bytes());
        digest.update([0]);
        digest.update(column.digest.values.finalize());
        digest.update(column.digest.nulls.finalize());
        profile.order.push(name.to_string());
        profile.columns.insert(name.to_string(), column.profile);
    }
    digest.update(state.rows.to_le_bytes());
    Ok(PassOutput {
        schema,
        row_count: state.rows,
        profile,
        digest: format!("sha256:{}", hex::encode(digest.finalize())),
        suite: state.suite,
    })
}

/// Exact medians of the named columns of a Parquet file (one column read at a time).
pub fn exact_medians(
    parquet: &Path,
    columns: &[String],
) -> Result<std::collections::BTreeMap<String, Option<f64>>, DataError> {
    let mut out = std::collections::BTreeMap::new();
    for name in columns {
        let path = PlRefPath::try_from_path(parquet)?;
        let frame = LazyFrame::scan_parquet(path, ScanArgsParquet::default())?
            .select([col(name.as_str()).cast(DataType::Float64).fill_nan(lit(NULL)).median()])
            .collect()?;
        let value = frame.select_at_idx(0).and_then(|c| c.get(0).ok()).and_then(|v| v.extract::<f64>());
        out.insert(name.clone(), value);
    }
    Ok(out)
}
