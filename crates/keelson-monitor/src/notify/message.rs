//! The RFC 5322 message of an alert email: headers, a plain-text body and the encodings that keep
//! both valid whatever the alert's text contains (RFC 2047 for a non-ASCII subject,
//! quoted-printable for a non-ASCII body). Line endings are CRLF throughout; dot-stuffing is the
//! SMTP layer's job.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::Notification;

/// RFC 5322 caps a line at 998 bytes; longer ASCII lines go quoted-printable, which folds them.
const MAX_LINE: usize = 998;
/// RFC 2045: encoded lines of at most 76 characters.
const QP_LINE: usize = 76;
/// RFC 2047: an encoded-word is at most 75 characters; `=?UTF-8?B?` and `?=` take 12, leaving 63
/// base64 characters, i.e. 45 bytes of text (whole characters only).
const WORD_BYTES: usize = 45;

/// The full message, headers and body, CRLF line endings.
pub(super) fn build(from: &str, to: &[String], n: &Notification, date: SystemTime, message_id: &str) -> String {
    let subject = format!("[Keelson {}] {}: {}", n.severity, one_line(&n.monitor), one_line(&n.title));
    let body = body_text(n);
    let (encoding, body) = if body.is_ascii() && body.lines().all(|l| l.len() <= MAX_LINE) {
        ("7bit", crlf(&body))
    } else {
        ("quoted-printable", quoted_printable(&body))
    };

    let mut headers = vec![
        format!("Date: {}", rfc5322_date(date)),
        format!("From: {from}"),
        format!("To: {}", address_list(to)),
        format!("Subject: {}", encode_header(&subject)),
        format!("Message-ID: {message_id}"),
        "MIME-Version: 1.0".to_string(),
        "Content-Type: text/plain; charset=utf-8".to_string(),
        format!("Content-Transfer-Encoding: {encoding}"),
        // RFC 3834: tells vacation responders and ticket systems not to answer.
        "Auto-Submitted: auto-generated".to_string(),
    ];
    if is_header_safe(&n.alert_id) {
        headers.push(format!("X-Keelson-Alert-Id: {}", n.alert_id));
    }
    let mut message = headers.join("\r\n");
    message.push_str("\r\n\r\n");
    message.push_str(&body);
    if !message.ends_with("\r\n") {
        message.push_str("\r\n");
    }
    message
}

/// `<random@domain-of-sender>`: unique without knowing our host name.
pub(super) fn message_id(from: &str) -> String {
    let domain = from.rsplit_once('@').map_or("keelson.invalid", |(_, d)| d);
    format!("<{}@{domain}>", uuid::Uuid::new_v4().simple())
}

fn body_text(n: &Notification) -> String {
    let mut text = format!("[{}] {}\n\n", n.severity.as_str().to_uppercase(), n.title);
    if !n.summary.trim().is_empty() {
        text.push_str(n.summary.trim_end());
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "Monitor:  {}\nSeverity: {}\nFired at: {}\nAlert:    {}\n",
        n.monitor, n.severity, n.fired_at, n.alert_id
    ));
    if let Some(report) = &n.report {
        text.push_str(&format!("Report:   {report}\n"));
    }
    if !n.details.is_null() {
        text.push_str("\nSignals:\n");
        text.push_str(&serde_json::to_string_pretty(&n.details).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// Any mix of CRLF, CR and LF becomes CRLF.
pub(super) fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n")
}

/// Headers are single lines: control characters (CR, LF above all, which would inject headers)
/// and runs of whitespace become one space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

fn is_header_safe(text: &str) -> bool {
    !text.is_empty() && text.len() <= 200 && text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Folds long recipient lists after the commas.
fn address_list(to: &[String]) -> String {
    let joined = to.join(", ");
    if joined.len() + 4 <= QP_LINE {
        joined
    } else {
        to.join(",\r\n ")
    }
}

/// An unstructured header value: as is when short ASCII, else RFC 2047 base64 encoded-words,
/// folded one per line.
fn encode_header(text: &str) -> String {
    if text.is_ascii() && text.len() <= 900 {
        return text.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > WORD_BYTES {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    // Whitespace between adjacent encoded-words is dropped by decoders, so folding is invisible.
    words.join("\r\n ")
}

fn encoded_word(chunk: &str) -> String {
    format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(chunk.as_bytes()))
}

/// RFC 2045 quoted-printable with CRLF hard breaks and `=` soft breaks at 76 characters.
pub(super) fn quoted_printable(text: &str) -> String {
    let normalized = crlf(text);
    let mut out = String::with_capacity(normalized.len() * 3 / 2);
    for (i, line) in normalized.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut width = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let literal = matches!(b, 33..=60 | 62..=126) || (matches!(b, b' ' | b'\t') && !last);
            let token = if literal { char::from(b).to_string() } else { format!("={b:02X}") };
            // Keep room for the `=` of a soft break.
            if width + token.len() > QP_LINE - 1 {
                out.push_str("=\r\n");
                width = 0;
            }
            out.push_str(&token);
            width += token.len();
        }
    }
    out
}

/// `Tue, 02 Jan 2024 15:04:05 +0000`.
pub(super) fn rfc5322_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31): Howard Hinnant's proleptic Gregorian
/// algorithm, restricted to dates after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        // 2024-02-29T13:05:09Z, a leap day.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_211_909);
        assert_eq!(rfc5322_date(t), "Thu, 29 Feb 2024 13:05:09 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc5322_date(t), "Tue, 31 Dec 2024 23:59:59 +0000");
    }

    #[test]
    fn non_ascii_subjects_are_encoded_words() {
        let encoded = encode_header("Dérive détectée sur « prix » — colonne âge");
        for word in encoded.split("\r\n ") {
            assert!(word.starts_with("=?UTF-8?B?") && word.ends_with("?="));
            assert!(word.len() <= 75, "{word}");
        }
        let decoded: String = encoded
            .split("\r\n ")
            .map(|w| {
                let b64 = &w[10..w.len() - 2];
                let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        assert_eq!(decoded, "Dérive détectée sur « prix » — colonne âge");
        assert_eq!(encode_header("plain"), "plain");
    }

    #[test]
    fn quoted_printable_round_trips_and_keeps_lines_short() {
        let text = format!("café = prêt \nsecond\tline\t\n{}", "é".repeat(60));
        let qp = quoted_printable(&text);
        assert!(qp.is_ascii());
        assert!(qp.split("\r\n").all(|l| l.len() <= QP_LINE), "{qp}");
        assert!(qp.starts_with("caf=C3=A9 =3D pr=C3=AAt=20\r\nsecond\tline=09\r\n"));
        // Decode: drop soft breaks, then =XX.
        let joined = qp.replace("=\r\n", "");
        let mut bytes = Vec::new();
        let raw = joined.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'=' {
                bytes.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        assert_eq!(String::from_utf8(bytes).unwrap(), crlf(&text));
    }

    #[test]
    fn header_values_cannot_inject_headers() {
        assert_eq!(one_line("a\r\nBcc: x@y\tz"), "a Bcc: x@y z");
    }
}
