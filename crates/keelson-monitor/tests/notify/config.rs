use keelson_monitor::notify::{Channel, EmailChannel, Notification, Security};
use serde_json::json;

fn parse(value: serde_json::Value) -> Result<Channel, String> {
    let channel: Channel = serde_json::from_value(value).map_err(|e| e.to_string())?;
    channel.check()?;
    Ok(channel)
}

#[test]
fn channels_parse_with_defaults() {
    let channel = parse(json!({
        "type": "email",
        "smtp_host": "smtp.example.com",
        "from": "keelson@example.com",
        "to": ["oncall@example.com"],
        "username": "keelson",
        "password_secret": "smtp-password",
    }))
    .unwrap();
    let Channel::Email(email) = &channel else { panic!("{channel:?}") };
    assert_eq!(email.security, Security::Starttls);
    assert_eq!(email.port(), 587);
    let tls = EmailChannel { security: Security::Tls, ..email.clone() };
    assert_eq!(tls.port(), 465);
    // Round trip.
    let again: Channel = serde_json::from_value(serde_json::to_value(&channel).unwrap()).unwrap();
    assert_eq!(again, channel);

    parse(json!({"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/X"})).unwrap();
    parse(json!({
        "type": "webhook",
        "url": "https://receiver.example/keelson",
        "secret": "webhook-signing-key",
        "headers": {"Authorization": "Bearer x"},
    }))
    .unwrap();
}

#[test]
fn unknown_fields_and_types_are_refused() {
    let err = parse(json!({"type": "slack", "url": "https://x.example", "channel": "#ml"})).unwrap_err();
    assert!(err.contains("unknown field `channel`"), "{err}");
    let err = parse(json!({"type": "webhook", "url": "https://x.example", "signing_key": "plain"})).unwrap_err();
    assert!(err.contains("unknown field `signing_key`"), "{err}");
    let err = parse(json!({"type": "pager", "url": "https://x.example"})).unwrap_err();
    assert!(err.contains("unknown variant `pager`"), "{err}");
    let err = parse(json!({"url": "https://x.example"})).unwrap_err();
    assert!(err.contains("missing field `type`"), "{err}");
}

#[test]
fn bad_urls_are_explained() {
    let err = parse(json!({"type": "webhook", "url": "not a url"})).unwrap_err();
    assert!(err.contains("webhook channel: url \"not a url\" is not a valid URL"), "{err}");
    let err = parse(json!({"type": "slack", "url": "ftp://files.example/x"})).unwrap_err();
    assert!(err.contains("slack channel: url must be an http or https URL"), "{err}");
}

#[test]
fn webhook_headers_cannot_replace_ours() {
    let err = parse(json!({
        "type": "webhook",
        "url": "https://x.example",
        "headers": {"X-Keelson-Signature": "sha256=forged"},
    }))
    .unwrap_err();
    assert!(err.contains("is set by Keelson"), "{err}");
    let err = parse(json!({
        "type": "webhook",
        "url": "https://x.example",
        "headers": {"Bad Name": "v"},
    }))
    .unwrap_err();
    assert!(err.contains("not a valid HTTP header name"), "{err}");
}

#[test]
fn email_configuration_mistakes_are_explained() {
    let base = json!({
        "type": "email",
        "smtp_host": "smtp.example.com",
        "from": "keelson@example.com",
        "to": ["oncall@example.com"],
    });
    let with = |key: &str, value: serde_json::Value| {
        let mut v = base.clone();
        v[key] = value;
        parse(v)
    };
    parse(base.clone()).unwrap();

    let err = with("to", json!([])).unwrap_err();
    assert!(err.contains("to must list at least one recipient"), "{err}");
    let err = with("to", json!(["oncall@example.com\r\nBcc: x@evil.example"])).unwrap_err();
    assert!(err.contains("is not an email address"), "{err}");
    let err = with("from", json!("Keelson <keelson@example.com>")).unwrap_err();
    assert!(err.contains("bare address"), "{err}");
    let err = with("security", json!("ssl")).unwrap_err();
    assert!(err.contains("unknown variant `ssl`"), "{err}");
    let err = with("username", json!("keelson")).unwrap_err();
    assert!(err.contains("password_secret is not"), "{err}");
    let err = with("to", json!(["oncall@exa mple.com"])).unwrap_err();
    assert!(err.contains("is not an email address"), "{err}");

    let mut clear = base.clone();
    clear["security"] = json!("none");
    clear["username"] = json!("keelson");
    clear["password_secret"] = json!("smtp-password");
    let err = parse(clear.clone()).unwrap_err();
    assert!(err.contains("clear text to smtp.example.com"), "{err}");
    clear["smtp_host"] = json!("localhost");
    parse(clear.clone()).unwrap();
    clear["smtp_host"] = json!("::1");
    parse(clear).unwrap();
}

#[test]
fn fields_that_named_environment_variables_are_refused_with_directions() {
    let err = parse(json!({
        "type": "email",
        "smtp_host": "smtp.attacker.example",
        "from": "keelson@example.com",
        "to": ["oncall@example.com"],
        "username": "keelson",
        "password_env": "KEELSON_DATABASE_URL",
    }))
    .unwrap_err();
    assert_eq!(
        err,
        "email channel: `password_env` is no longer supported: store the password with \
         `PUT /api/v1/secrets/{name}` and name it in `password_secret`"
    );
    let err = parse(json!({"type": "webhook", "url": "https://x.example", "secret_env": "AWS_SECRET_ACCESS_KEY"}))
        .unwrap_err();
    assert!(err.starts_with("webhook channel: `secret_env` is no longer supported"), "{err}");
    assert!(err.contains("name it in `secret`"), "{err}");
}

#[test]
fn secret_fields_hold_secret_names() {
    for bad in ["", "../etc/passwd", "has space", "-leading-dash"] {
        let err = parse(json!({"type": "webhook", "url": "https://x.example", "secret": bad})).unwrap_err();
        assert!(err.contains("webhook channel: secret: secret name"), "{bad:?}: {err}");
        let err = parse(json!({
            "type": "email",
            "smtp_host": "smtp.example.com",
            "from": "keelson@example.com",
            "to": ["oncall@example.com"],
            "username": "keelson",
            "password_secret": bad,
        }))
        .unwrap_err();
        assert!(err.contains("email channel: password_secret: secret name"), "{bad:?}: {err}");
    }
}

#[test]
fn notifications_round_trip() {
    let n = super::notification();
    let value = serde_json::to_value(&n).unwrap();
    assert_eq!(value["severity"], "critical");
    let back: Notification = serde_json::from_value(value).unwrap();
    assert_eq!(back, n);
    let minimal: Notification = serde_json::from_value(json!({
        "alert_id": "a", "monitor": "m", "severity": "info", "title": "t",
        "summary": "s", "fired_at": "2025-01-01T00:00:00Z",
    }))
    .unwrap();
    assert_eq!(minimal.report, None);
    assert!(minimal.details.is_null());
}
