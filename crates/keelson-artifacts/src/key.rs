//! Validated artifact keys. A key is a relative, `/`-separated path below a store's root. Keys
//! come from users (run ids, file names in uploads), so everything that could escape the root on
//! some backend, or mean different things on different backends, is refused up front. Keys are
//! taken literally: nothing is ever percent-decoded or Unicode-normalised.

use std::fmt;
use std::str::FromStr;

use crate::error::{ArtifactError, Result};

/// Longest accepted key in bytes (S3's and GCS's limit for a whole object name).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest accepted segment in bytes (the usual file-name limit of local filesystems).
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Longest excerpt of a rejected key that goes into an error message.
const MAX_KEY_IN_MESSAGE: usize = 120;

/// A validated relative key such as `runs/1/model.onnx`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactKey(String);

impl ArtifactKey {
    /// Validates `key`; the error names the key and says why it was refused.
    pub fn parse(key: &str) -> Result<ArtifactKey> {
        match check_key(key) {
            Ok(()) => Ok(ArtifactKey(key.to_owned())),
            Err(reason) => Err(invalid_key(key, reason)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// `self/child`, where `child` is itself a relative key (one or more segments).
    pub fn join(&self, child: &str) -> Result<ArtifactKey> {
        ArtifactKey::parse(child)?;
        ArtifactKey::parse(&format!("{}/{child}", self.0))
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether `self` lies strictly below `prefix` (segment-wise, so `ab` is not below `a`).
    pub fn is_below(&self, prefix: &ArtifactKey) -> bool {
        self.0.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ArtifactKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ArtifactKey {
    type Err = ArtifactError;

    fn from_str(key: &str) -> Result<ArtifactKey> {
        ArtifactKey::parse(key)
    }
}

impl TryFrom<&str> for ArtifactKey {
    type Error = ArtifactError;

    fn try_from(key: &str) -> Result<ArtifactKey> {
        ArtifactKey::parse(key)
    }
}

impl TryFrom<String> for ArtifactKey {
    type Error = ArtifactError;

    fn try_from(key: String) -> Result<ArtifactKey> {
        match check_key(&key) {
            Ok(()) => Ok(ArtifactKey(key)),
            Err(reason) => Err(invalid_key(&key, reason)),
        }
    }
}

impl From<ArtifactKey> for String {
    fn from(key: ArtifactKey) -> String {
        key.0
    }
}

pub(crate) fn invalid_key(key: &str, reason: String) -> ArtifactError {
    ArtifactError::InvalidKey { key: excerpt(key), reason }
}

/// The key as it goes into a message: whole when short, else its start and its length.
fn excerpt(key: &str) -> String {
    if key.len() <= MAX_KEY_IN_MESSAGE {
        return key.to_owned();
    }
    let mut end = MAX_KEY_IN_MESSAGE;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &key[..end], key.len())
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("key is empty; give a relative path such as runs/1/model.onnx".to_owned());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("key is {} bytes long; keys may be at most {MAX_KEY_BYTES} bytes", key.len()));
    }
    if key.starts_with("\\\\") {
        return Err("unc paths (\\\\server\\share) are not accepted; keys are relative paths separated by /".to_owned());
    }
    if key.starts_with('/') {
        return Err("absolute keys are not accepted; keys are relative to the store root, \
             such as runs/1/model.onnx"
            .to_owned());
    }
    let bytes = key.as_bytes();
    if bytes[0].is_ascii_alphabetic() && bytes.get(1) == Some(&b':') {
        return Err(format!(
            "windows drive prefix {:?} is not accepted; keys are relative to the store root",
            &key[..2]
        ));
    }
    for c in key.chars() {
        if let Some(what) = forbidden_char(c) {
            return Err(format!("character U+{:04X} ({what}) is not accepted", u32::from(c)));
        }
    }
    if let Some(escape) = find_percent_escape(key) {
        return Err(format!(
            "percent-encoded escape {escape:?} is not accepted; keys are taken literally and \
             never decoded"
        ));
    }
    let segment_count = key.split('/').count();
    for (index, segment) in key.split('/').enumerate() {
        check_segment(segment, index + 1 == segment_count)?;
    }
    Ok(())
}

fn check_segment(segment: &str, is_last: bool) -> std::result::Result<(), String> {
    if segment.is_empty() && is_last {
        return Err("trailing / is not accepted; a key names an object, not a directory".to_owned());
    }
    if segment.is_empty() {
        return Err("empty segment (//) is not accepted; separate segments with a single /".to_owned());
    }
    if segment == "." || segment == ".." {
        return Err(format!("relative segment {segment:?} is not accepted; keys must stay below the store root"));
    }
    if segment.trim().is_empty() {
        return Err(format!("segment {segment:?} is only whitespace; segments need a visible character"));
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(format!(
            "a segment is {} bytes long; segments may be at most {MAX_SEGMENT_BYTES} bytes",
            segment.len()
        ));
    }
    // object_store's local backend stages uploads as `name#<digits>` and hides such names, so
    // they would work on S3 but vanish on disk.
    if let Some((_, suffix)) = segment.split_once('#') {
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "segment {segment:?} ends in #<digits>, which the local store reserves for \
                 partial uploads; add a non-digit after #"
            ));
        }
    }
    Ok(())
}

/// Why `c` may not appear in a key, if it may not.
fn forbidden_char(c: char) -> Option<&'static str> {
    match c {
        '\\' => Some("backslash; separate segments with /"),
        // `is_control` covers C0, DEL and C1 (which includes U+0085 next line).
        c if c.is_control() => Some("control character"),
        '\u{2028}' | '\u{2029}' => Some("line or paragraph separator"),
        // Bidirectional overrides and isolates make a name display differently from its bytes.
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some("bidirectional text control"),
        '\u{FEFF}' => Some("zero-width no-break space"),
        // Characters that some layer (NFKC normalisation, a font, a human) may read as `.`, `/`
        // or `\`, turning a harmless name into a traversal.
        '\u{FF0E}' | '\u{2024}' | '\u{FE52}' => Some("look-alike of ."),
        '\u{2025}' => Some("look-alike of .."),
        '\u{FF0F}' | '\u{2215}' | '\u{2044}' | '\u{29F8}' => Some("look-alike of /"),
        '\u{FF3C}' | '\u{FE68}' | '\u{2216}' | '\u{29F5}' | '\u{29F9}' => Some("look-alike of a backslash"),
        _ => None,
    }
}

/// The first `%XX` (two hex digits) in `key`.
fn find_percent_escape(key: &str) -> Option<&str> {
    let bytes = key.as_bytes();
    (0..bytes.len().saturating_sub(2))
        .find(|&i| bytes[i] == b'%' && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit())
        .map(|i| &key[i..i + 3])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_shortens_long_keys_on_char_boundaries() {
        let key = "ü".repeat(200);
        let shown = excerpt(&key);
        assert!(shown.ends_with("… (400 bytes)"), "{shown}");
        assert!(shown.len() < 200);
    }

    #[test]
    fn percent_escape_at_the_very_end_is_found() {
        assert_eq!(find_percent_escape("ab%2F"), Some("%2F"));
        assert_eq!(find_percent_escape("ab%2"), None);
        assert_eq!(find_percent_escape("%"), None);
    }
}
