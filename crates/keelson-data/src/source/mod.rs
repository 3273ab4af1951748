//! Sources: where a dataset version's rows come from. Each opens as a lazy frame that the
//! streaming engine reads in batches, so a file larger than memory ingests in bounded memory.

mod diagnose;
mod http;
mod iso_time;
mod postgres;

pub use diagnose::diagnose;
pub use http::download_artifact;

use crate::dtype::parse_dtype;
use crate::error::DataError;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Rows read to infer column types when the source declares none.
const INFER_SCHEMA_ROWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Json,
    Jsonl,
    Parquet,
}

impl FileFormat {
    /// From a file name's extension (`.ndjson` reads as JSON lines).
    pub fn from_name(name: &str) -> Option<FileFormat> {
        let lower = name.to_ascii_lowercase();
        let extension = lower.rsplit('.').next()?;
        Some(match extension {
            "csv" | "tsv" | "txt" => FileFormat::Csv,
            "json" => FileFormat::Json,
            "jsonl" | "ndjson" => FileFormat::Jsonl,
            "parquet" | "pq" => FileFormat::Parquet,
            _ => return None,
        })
    }
}

/// The CSV dialect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvOptions {
    pub separator: String,
    pub quote_char: Option<String>,
    pub has_header: bool,
    pub null_values: Vec<String>,
    pub comment_prefix: Option<String>,
    pub skip_rows: usize,
    /// `utf8` refuses invalid bytes; `utf8-lossy` replaces them.
    pub encoding: String,
    pub decimal_comma: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            separator: ",".into(),
            quote_char: Some("\"".into()),
            has_header: true,
            null_values: Vec::new(),
            comment_prefix: None,
            skip_rows: 0,
            encoding: "utf8".into(),
            decimal_comma: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceSpec {
    File {
        path: String,
        #[serde(default)]
        format: Option<FileFormat>,
        #[serde(default)]
        csv: Option<CsvOptions>,
        #[serde(default)]
        schema: Option<BTreeMap<String, String>>,
    },
    Artifact {
        key: String,
        #[serde(default)]
        format: Option<FileFormat>,
        #[serde(default)]
        csv: Option<CsvOptions>,
        #[serde(default)]
        schema: Option<BTreeMap<String, String>>,
    },
    Http {
        url: String,
        #[serde(default)]
        format: Option<FileFormat>,
        #[serde(default)]
        csv: Option<CsvOptions>,
        #[serde(default)]
        schema: Option<BTreeMap<String, String>>,
    },
    Postgres {
        url: String,
        query: String,
        #[serde(default)]
        batch_rows: Option<usize>,
    },
}

impl SourceSpec {
    /// What lineage and the version record say about the source (no credentials).
    pub fn describe(&self) -> serde_json::Value {
        match self {
            SourceSpec::File { path, format, .. } => {
                serde_json::json!({"kind": "file", "path": path, "format": format})
            }
            SourceSpec::Artifact { key, format, .. } => {
                serde_json::json!({"kind": "artifact", "key": key, "format": format})
            }
            SourceSpec::Http { url, format, .. } => serde_json::json!({"kind": "http", "url": url, "format": format}),
            SourceSpec::Postgres { url, query, .. } => {
                serde_json::json!({"kind": "postgres", "url": redact_password(url), "query": query})
            }
        }
    }
}

fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// A local file ready for the engine, with what is needed to read it.
#[derive(Debug)]
pub struct LocalFile {
    pub path: PathBuf,
    /// The name errors show (the user's path, URL or key, not a scratch path).
    pub display: String,
    pub format: FileFormat,
    pub csv: CsvOptions,
    pub schema: Option<BTreeMap<String, String>>,
    /// Keeps a downloaded copy alive while it is read.
    pub _scratch: Option<tempfile::TempPath>,
}

/// Resolves a user's relative path below `root`; anything that would leave it is refused.
pub fn resolve_below(root: &Path, relative: &str) -> Result<PathBuf, DataError> {
    let candidate = Path::new(relative);
    if relative.is_empty() || candidate.is_absolute() {
        return Err(DataError::invalid(format!(
            "source path `{relative}` must be relative to the import root (data.import_root)"
        )));
    }
    if candidate.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(DataError::invalid(format!("source path `{relative}` may not contain `..` or a root")));
    }
    let joined = root.join(candidate);
    let canonical_root = root
        .canonicalize()
        .map_err(|e| DataError::invalid(format!("the import root `{}` is not readable: {e}", root.display())))?;
    let canonical = joined
        .canonicalize()
        .map_err(|_| DataError::invalid(format!("source file `{relative}` does not exist below the import root")))?;
    if !canonical.starts_with(&canonical_root) {
        return Err(DataError::invalid(format!("source path `{relative}` leaves the import root")));
    }
    if !canonical.is_file() {
        return Err(DataError::invalid(format!("source path `{relative}` is not a file")));
    }
    Ok(canonical)
}

fn format_for(name: &str, declared: &Option<FileFormat>) -> Result<FileFormat, DataError> {
    declared.clone().or_else(|| FileFormat::from_name(name)).ok_or_else(|| {
        DataError::invalid(format!(
            "cannot tell the format of `{name}` from its name; set \"format\" to csv, json, jsonl or parquet"
        ))
    })
}

impl SourceSpec {
    /// How a file source is read: its declared format, CSV dialect and column types.
    fn read_options(&self) -> (Option<FileFormat>, CsvOptions, Option<BTreeMap<String, String>>) {
        match self {
            SourceSpec::File { format, csv, schema, .. }
            | SourceSpec::Artifact { format, csv, schema, .. }
            | SourceSpec::Http { format, csv, schema, .. } => {
                (format.clone(), csv.clone().unwrap_or_default(), schema.clone())
            }
            SourceSpec::Postgres { .. } => (Some(FileFormat::Parquet), CsvOptions::default(), None),
        }
    }
}

fn scratch_path(scratch: &Path, prefix: &str) -> Result<tempfile::TempPath, DataError> {
    Ok(tempfile::Builder::new().prefix(prefix).tempfile_in(scratch)?.into_temp_path())
}

/// Brings a source to a local file the engine can scan: files are resolved below the import
/// root; HTTP and artifact sources are streamed to scratch space; a PostgreSQL query is copied
/// to a scratch Parquet file in batches. Memory stays bounded in every case.
pub async fn fetch_local(
    spec: &SourceSpec,
    import_root: &Path,
    artifacts: &keelson_artifacts::ArtifactStore,
    scratch: &Path,
    egress: &keelson_egress::EgressPolicy,
) -> Result<LocalFile, DataError> {
    // (where the file is, what errors call it, the name its format is read from, scratch copy)
    let (path, display, name, scratch_copy) = match spec {
        SourceSpec::File { path, .. } => (resolve_below(import_root, path)?, path.clone(), path.clone(), None),
        SourceSpec::Artifact { key, .. } => {
            let parsed = keelson_artifacts::ArtifactKey::parse(key)
                .map_err(|e| DataError::invalid(format!("artifact key `{key}`: {e}")))?;
            let target = scratch_path(scratch, "artifact-")?;
            http::download_artifact(artifacts, &parsed, &target).await?;
            (target.to_path_buf(), key.clone(), key.clone(), Some(target))
        }
        SourceSpec::Http { url, .. } => {
            let target = scratch_path(scratch, "http-")?;
            http::download(url, &target, egress).await?;
            let name = url::Url::parse(url).map(|u| u.path().to_string()).unwrap_or_default();
            (target.to_path_buf(), url.clone(), name, Some(target))
        }
        SourceSpec::Postgres { url, query, batch_rows } => {
            let target = scratch_path(scratch, "postgres-")?;
            postgres::export(url, query, batch_rows.unwrap_or(50_000), &target, egress).await?;
            let display = format!("postgres query on {}", redact_password(url));
            (target.to_path_buf(), display.clone(), display, Some(target))
        }
    };
    let (format, csv, schema) = spec.read_options();
    Ok(LocalFile { path, display, format: format_for(&name, &format)?, csv, schema, _scratch: scratch_copy })
}

fn single_byte(value: &str, what: &str) -> Result<u8, DataError> {
    match value.as_bytes() {
        [byte] => Ok(*byte),
        _ => Err(DataError::invalid(format!("csv {what} must be one ASCII character, got `{value}`"))),
    }
}

fn declared_schema(schema: &Option<BTreeMap<String, String>>) -> Result<Option<SchemaRef>, DataError> {
    let Some(columns) = schema else { return Ok(None) };
    let mut out = Schema::default();
    for (name, dtype) in columns {
        let parsed = parse_dtype(dtype).map_err(|e| DataError::invalid(format!("schema of column `{name}`: {e}")))?;
        out.with_column(name.as_str().into(), parsed);
    }
    Ok(Some(Arc::new(out)))
}

/// The lazy scan of a local file.
pub fn scan(file: &LocalFile) -> Result<LazyFrame, DataError> {
    let path = PlRefPath::try_from_path(&file.path).map_err(|e| DataError::engine(&file.display, e))?;
    let context = |e| DataError::engine(&file.display, e);
    let declared = declared_schema(&file.schema)?;
    let frame = match file.format {
        FileFormat::Csv => {
            let options = &file.csv;
            let encoding = match options.encoding.as_str() {
                "utf8" | "utf-8" => CsvEncoding::Utf8,
                "utf8-lossy" | "utf-8-lossy" => CsvEncoding::LossyUtf8,
                other => {
                    return Err(DataError::invalid(format!(
                        "csv encoding `{other}` is not supported; use utf8 or utf8-lossy"
                    )))
                }
            };
            let quote = options.quote_char.as_deref().map(|q| single_byte(q, "quote_char")).transpose()?;
            let mut reader = LazyCsvReader::new(path)
                .with_has_header(options.has_header)
                .with_separator(single_byte(&options.separator, "separator")?)
                .with_quote_char(quote)
                .with_skip_rows(options.skip_rows)
                .with_encoding(encoding)
                .with_decimal_comma(options.decimal_comma)
                .with_infer_schema_length(Some(INFER_SCHEMA_ROWS))
                .with_truncate_ragged_lines(false)
                .with_missing_is_null(true)
                .with_dtype_overwrite(text_for_temporal(&declared));
            if !options.null_values.is_empty() {
                reader = reader.with_null_values(Some(NullValues::AllColumns(
                    options.null_values.iter().map(|v| PlSmallStr::from(v.as_str())).collect(),
                )));
            }
            if let Some(prefix) = &options.comment_prefix {
                reader = reader.with_comment_prefix(Some(PlSmallStr::from(prefix.as_str())));
            }
            let frame = reader.finish().map_err(context)?;
            parse_temporal(frame, &declared)
        }
        FileFormat::Jsonl => LazyJsonLineReader::new(path)
            .with_infer_schema_length(std::num::NonZeroUsize::new(INFER_SCHEMA_ROWS))
            .with_schema_overwrite(declared)
            .finish()
            .map_err(context)?,
        FileFormat::Json => {
            let reader = std::fs::File::open(&file.path)?;
            let frame = JsonReader::new(reader).with_json_format(JsonFormat::Json).finish().map_err(context)?;
            let frame = frame.lazy();
            match declared {
                Some(schema) => cast_to(frame, &schema),
                None => frame,
            }
        }
        FileFormat::Parquet => LazyFrame::scan_parquet(path, ScanArgsParquet::default()).map_err(context)?,
    };
    Ok(frame)
}

fn is_fast_temporal(dtype: &DataType) -> bool {
    matches!(dtype, DataType::Date | DataType::Datetime(TimeUnit::Microseconds, None))
}

/// The declared schema with date and datetime columns read as text (see `iso_time`).
fn text_for_temporal(declared: &Option<SchemaRef>) -> Option<SchemaRef> {
    let schema = declared.as_ref()?;
    let mut text = Schema::default();
    for (name, dtype) in schema.iter() {
        let read_as = if is_fast_temporal(dtype) { DataType::String } else { dtype.clone() };
        text.with_column(name.clone(), read_as);
    }
    Some(Arc::new(text))
}

/// Parses the date and datetime columns `text_for_temporal` left as text.
fn parse_temporal(frame: LazyFrame, declared: &Option<SchemaRef>) -> LazyFrame {
    let Some(schema) = declared else { return frame };
    let parses: Vec<Expr> = schema
        .iter()
        .filter(|(_, dtype)| is_fast_temporal(dtype))
        .map(|(name, dtype)| {
            let target = dtype.clone();
            let output = dtype.clone();
            col(name.clone()).map(
                move |column| iso_time::parse_column(column, &target),
                move |_, field| Ok(Field::new(field.name().clone(), output.clone())),
            )
        })
        .collect();
    if parses.is_empty() {
        frame
    } else {
        frame.with_columns(parses)
    }
}

fn cast_to(frame: LazyFrame, schema: &Schema) -> LazyFrame {
    let casts: Vec<Expr> = schema.iter().map(|(name, dtype)| col(name.clone()).strict_cast(dtype.clone())).collect();
    frame.with_columns(casts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.csv"), "x\n1\n").unwrap();
        assert!(resolve_below(root.path(), "a.csv").is_ok());
        assert!(resolve_below(root.path(), "./a.csv").is_ok());
        for bad in ["../a.csv", "/etc/passwd", "", "sub/../../a.csv", "missing.csv"] {
            assert!(resolve_below(root.path(), bad).is_err(), "{bad}");
        }
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.csv"), "x\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret.csv"), root.path().join("link.csv")).unwrap();
        #[cfg(unix)]
        assert!(resolve_below(root.path(), "link.csv").unwrap_err().to_string().contains("leaves"));
    }

    #[test]
    fn formats_come_from_names_and_passwords_never_show() {
        assert_eq!(FileFormat::from_name("x.NDJSON"), Some(FileFormat::Jsonl));
        assert_eq!(FileFormat::from_name("x.bin"), None);
        let spec: SourceSpec =
            serde_json::from_str(r#"{"kind":"postgres","url":"postgres://u:secret@h/db","query":"select 1"}"#).unwrap();
        assert!(!spec.describe().to_string().contains("secret"));
        assert!(serde_json::from_str::<SourceSpec>(r#"{"kind":"ftp","url":"x"}"#).is_err());
    }
}
