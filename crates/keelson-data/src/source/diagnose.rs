//! When the engine refuses a file, find the line and column at fault. This runs only on the
//! error path, so the fast path never pays for a second read of the file.

use super::{FileFormat, LocalFile};
use crate::error::DataError;
use std::io::{BufRead, BufReader};

/// Replaces an engine error on a CSV or JSON-lines file by one naming its line and column.
pub fn diagnose(file: &LocalFile, error: DataError) -> DataError {
    let DataError::Engine { source, .. } = &error else { return error };
    let engine_message = source.to_string();
    let located = match file.format {
        FileFormat::Csv => locate_csv(file, &engine_message),
        FileFormat::Jsonl => locate_jsonl(file),
        _ => None,
    };
    match located {
        Some(message) => DataError::invalid(format!("file `{}`: {message}", file.display)),
        None => DataError::invalid(format!("file `{}`: {engine_message}", file.display)),
    }
}

/// Splits one CSV record into fields, honouring the quote character.
fn split_fields(line: &[u8], separator: u8, quote: Option<u8>) -> Vec<Vec<u8>> {
    let mut fields = Vec::new();
    let mut current = Vec::new();
    let mut quoted = false;
    for &byte in line {
        if Some(byte) == quote {
            quoted = !quoted;
            continue;
        }
        if byte == separator && !quoted {
            fields.push(std::mem::take(&mut current));
            continue;
        }
        current.push(byte);
    }
    fields.push(current);
    fields
}

/// `could not parse `abc` as dtype `i64` at column 'amount'` → ("abc", "amount").
fn parse_failure(message: &str) -> Option<(String, String)> {
    let value = message.split("could not parse `").nth(1)?.split('`').next()?.to_string();
    let column = message.split("at column '").nth(1)?.split('\'').next()?.to_string();
    Some((value, column))
}

fn locate_csv(file: &LocalFile, engine_message: &str) -> Option<String> {
    let options = &file.csv;
    let separator = *options.separator.as_bytes().first()?;
    let quote = options.quote_char.as_deref().and_then(|q| q.as_bytes().first().copied());
    let mut reader = BufReader::new(std::fs::File::open(&file.path).ok()?);
    let mut header: Option<Vec<String>> = None;
    let mut expected_fields = None;
    let failure = parse_failure(engine_message);
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut pending_quote = false;
    let mut record = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).ok()?;
        if read == 0 {
            return None;
        }
        number += 1;
        if number <= options.skip_rows {
            continue;
        }
        if let Err(error) = std::str::from_utf8(&line) {
            return Some(format!(
                "line {number}, byte {}: invalid UTF-8 (set csv.encoding to utf8-lossy to replace bad bytes)",
                error.valid_up_to() + 1
            ));
        }
        // A quoted field may span lines: gather the whole record first.
        record.extend_from_slice(&line);
        pending_quote ^= line.iter().filter(|b| Some(**b) == quote).count() % 2 == 1;
        if pending_quote {
            continue;
        }
        let text = std::mem::take(&mut record);
        let trimmed = text.strip_suffix(b"\n").unwrap_or(&text);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(prefix) = &options.comment_prefix {
            if trimmed.starts_with(prefix.as_bytes()) {
                continue;
            }
        }
        let fields = split_fields(trimmed, separator, quote);
        match expected_fields {
            None => {
                expected_fields = Some(fields.len());
                if options.has_header {
                    header = Some(fields.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
                    continue;
                }
            }
            Some(expected) if fields.len() != expected => {
                return Some(format!(
                    "line {number} has {} fields, expected {expected} (as the first row)",
                    fields.len()
                ));
            }
            _ => {}
        }
        if let (Some((value, column)), Some(names)) = (&failure, &header) {
            if let Some(index) = names.iter().position(|n| n == column) {
                if fields.get(index).is_some_and(|f| f.as_slice() == value.as_bytes()) {
                    return Some(format!(
                        "line {number}, column `{column}` (field {}): value `{value}` does not fit the column's type",
                        index + 1
                    ));
                }
            }
        }
    }
}

fn locate_jsonl(file: &LocalFile) -> Option<String> {
    let reader = BufReader::new(std::fs::File::open(&file.path).ok()?);
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line.ok()?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text,
            Err(error) => return Some(format!("line {}, byte {}: invalid UTF-8", index + 1, error.valid_up_to() + 1)),
        };
        if let Err(error) = serde_json::from_str::<serde_json::Value>(text) {
            return Some(format!("line {}, column {}: invalid JSON: {error}", index + 1, error.column()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_fields_and_reads_engine_messages() {
        assert_eq!(split_fields(b"a,\"b,c\",d", b',', Some(b'"')).len(), 3);
        assert_eq!(
            parse_failure("could not parse `x1` as dtype `i64` at column 'amount' (column number 2)"),
            Some(("x1".to_string(), "amount".to_string()))
        );
    }
}
