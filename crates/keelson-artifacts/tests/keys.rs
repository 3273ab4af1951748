//! Key validation: hostile keys are refused with a message naming them, ordinary ones pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keelson_artifacts::{ArtifactError, ArtifactKey};
use keelson_core::{ErrorKind, HasErrorKind};

/// Each hostile key with a fragment its rejection message must contain ("" = any message).
const HOSTILE: &[(&str, &str)] = &[
    ("", "empty"),
    ("/etc/passwd", "absolute"),
    ("/", "absolute"),
    ("C:", "drive"),
    ("c:/windows/system32", "drive"),
    ("C:evil", "drive"),
    ("\\\\server\\share\\x", "unc"),
    ("a\\b", "backslash"),
    ("..\\..\\x", "backslash"),
    ("..", "relative segment"),
    (".", "relative segment"),
    ("../x", "relative segment"),
    ("a/../../x", "relative segment"),
    ("a/./b", "relative segment"),
    ("a/..", "relative segment"),
    ("a//b", "empty segment"),
    ("a/", "trailing /"),
    ("a/b/", "trailing /"),
    ("a\0b", "control"),
    ("a\nb", "control"),
    ("a\rb", "control"),
    ("a\tb", "control"),
    ("a\u{1b}[31mred", "control"),
    ("a\u{7f}", "control"),
    ("a\u{85}b", "control"),
    ("a\u{2028}b", "separator"),
    ("a\u{2029}b", "separator"),
    ("evil\u{202E}gpj.exe", "bidirectional"),
    ("%2e%2e/x", "percent-encoded"),
    ("%2E%2E%2Fetc", "percent-encoded"),
    ("a%2Fb", "percent-encoded"),
    ("a%2fb", "percent-encoded"),
    ("a%00", "percent-encoded"),
    ("a%5c..", "percent-encoded"),
    ("\u{FF0E}\u{FF0E}/x", "look-alike of ."),
    ("a\u{FF0F}b", "look-alike of /"),
    ("a\u{FF3C}b", "look-alike of a backslash"),
    ("a\u{2215}b", "look-alike of /"),
    ("a\u{2044}b", "look-alike of /"),
    ("\u{2024}\u{2024}", "look-alike of ."),
    ("\u{2025}/x", "look-alike of .."),
    ("a\u{FE52}", "look-alike of ."),
    ("a\u{FE68}b", "look-alike of a backslash"),
    (" ", "whitespace"),
    ("a/   /b", "whitespace"),
    ("a/\u{3000}", "whitespace"),
    ("model.bin#1", "#<digits>"),
];

const ACCEPTED: &[&str] = &[
    "a",
    "runs/1/model.onnx",
    "dir/file with spaces.txt",
    "unicode/ü.txt",
    "a.b..c",
    "...",
    "..a",
    "a..",
    ".keelson/store-marker",
    ".hidden",
    "%zz",
    "100%",
    "50%/x",
    "a%2",
    " leading and trailing ",
    "tag#v1",
    "issue#12a",
    "#",
    "日本語/ファイル.txt",
    "ab:c",
    "model:v1",
    "emoji/🚀.bin",
];

#[test]
fn hostile_keys_are_rejected_with_a_reason() {
    assert!(HOSTILE.len() >= 20);
    for (key, fragment) in HOSTILE {
        let error = match ArtifactKey::parse(key) {
            Ok(parsed) => panic!("hostile key {key:?} was accepted as {parsed:?}"),
            Err(error) => error,
        };
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{key:?}");
        let message = error.to_string();
        assert!(message.contains(fragment), "message for {key:?} lacks {fragment:?}: {message}");
        assert!(message.starts_with("invalid artifact key "), "{message}");
        let ArtifactError::InvalidKey { reason, .. } = &error else {
            panic!("{key:?} gave {error:?}");
        };
        assert!(!reason.starts_with(char::is_uppercase), "reason for {key:?} is not lowercase: {reason}");
    }
}

#[test]
fn messages_name_the_offending_key() {
    let error = ArtifactKey::parse("runs/../../etc/passwd").unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid artifact key \"runs/../../etc/passwd\": relative segment \"..\" is not \
         accepted; keys must stay below the store root"
    );
    let error = ArtifactKey::parse("a%2Fb").unwrap_err();
    assert!(error.to_string().contains("\"a%2Fb\""), "{error}");
    assert!(error.to_string().contains("\"%2F\""), "{error}");
    let error = ArtifactKey::parse("a\0b").unwrap_err();
    assert!(error.to_string().contains("\"a\\0b\""), "control characters are escaped: {error}");
    assert!(error.to_string().contains("U+0000"), "{error}");
    let error = ArtifactKey::parse("\u{FF0E}\u{FF0E}/x").unwrap_err();
    assert!(error.to_string().contains("U+FF0E"), "{error}");
}

#[test]
fn length_limits() {
    let longest = "k".repeat(255);
    assert!(ArtifactKey::parse(&longest).is_ok());
    let error = ArtifactKey::parse(&"k".repeat(256)).unwrap_err();
    assert!(error.to_string().contains("255"), "{error}");

    let s255 = "s".repeat(255);
    let four_segments = format!("{s255}/{s255}/{s255}/{}/a", "s".repeat(254));
    assert_eq!(four_segments.len(), 1024);
    assert!(ArtifactKey::parse(&four_segments).is_ok());
    let too_long = four_segments + "d";
    let error = ArtifactKey::parse(&too_long).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("1025 bytes"), "{message}");
    assert!(message.len() < 400, "long keys are shortened in messages: {message}");
}

#[test]
fn ordinary_keys_are_accepted() {
    for key in ACCEPTED {
        match ArtifactKey::parse(key) {
            Ok(parsed) => {
                assert_eq!(parsed.as_str(), *key);
                assert_eq!(parsed.to_string(), *key);
            }
            Err(error) => panic!("{key:?} was rejected: {error}"),
        }
    }
}

#[test]
fn join_cannot_build_hostile_keys() {
    let base = ArtifactKey::parse("runs/1").unwrap();
    for child in ["..", "../..", ".", "", "/etc", "a/", "a//b", "..\\x", "%2e%2e", "\u{FF0E}\u{FF0E}", "x/../..", "C:"]
    {
        let Err(error) = base.join(child) else {
            panic!("join({child:?}) was accepted");
        };
        assert!(matches!(error, ArtifactError::InvalidKey { .. }), "{child:?}: {error}");
    }
    let joined = base.join("artifacts/model.onnx").unwrap();
    assert_eq!(joined.as_str(), "runs/1/artifacts/model.onnx");
    assert_eq!(joined.file_name(), "model.onnx");
    assert!(joined.is_below(&base));
    assert!(!ArtifactKey::parse("runs/10").unwrap().is_below(&base));

    let deep = ArtifactKey::parse(&"d".repeat(200)).unwrap();
    let mut key = deep.clone();
    for _ in 0..4 {
        key = key.join(deep.as_str()).unwrap();
    }
    assert!(key.join(deep.as_str()).is_err(), "join respects the key length limit");
}

#[test]
fn parse_via_traits() {
    let key: ArtifactKey = "a/b".parse().unwrap();
    assert_eq!(ArtifactKey::try_from("a/b").unwrap(), key);
    assert_eq!(ArtifactKey::try_from(String::from("a/b")).unwrap(), key);
    assert!(ArtifactKey::try_from(String::from("../a")).is_err());
    assert_eq!(String::from(key), "a/b");
}
