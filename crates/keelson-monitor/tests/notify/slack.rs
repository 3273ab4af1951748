use keelson_monitor::notify::{slack_payload, Channel, DeliveryStatus, SlackChannel};
use serde_json::Value;

use super::notification;
use super::servers::{http_once, LIMIT};

#[tokio::test]
async fn slack_gets_text_and_blocks() {
    let (url, server) = http_once(200, "ok".to_string()).await;
    let channel = Channel::Slack(SlackChannel { url: format!("{url}/services/T000/B000/XXXX") });
    let delivery = crate::send_on_loopback(&channel, &notification(), &crate::secrets(&[])).await.unwrap();
    let request = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Http(200));
    assert!(!delivery.target.contains("XXXX"));
    assert_eq!(request.request_line, "POST /services/T000/B000/XXXX HTTP/1.1");
    assert_eq!(request.headers["content-type"], "application/json");

    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("[CRITICAL] Drift in 3 of 12 features"), "{text}");
    assert!(text.contains("churn-model-drift"));
    assert!(text.contains("<https://keelson.example/reports/r-17|open report>"));

    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().len() <= 150);
    for block in &blocks[1..] {
        assert_eq!(block["type"], "section");
        assert_eq!(block["text"]["type"], "mrkdwn");
        let text = block["text"]["text"].as_str().unwrap();
        assert!(!text.is_empty() && text.chars().count() <= 3000);
    }
    // Only fields Slack documents for these block types.
    for block in blocks {
        let keys: Vec<&str> = block.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.iter().all(|k| ["type", "text"].contains(k)), "{keys:?}");
    }
}

#[test]
fn slack_text_is_escaped_and_bounded() {
    let mut n = notification();
    n.title = format!("<!channel> & {}", "long ".repeat(100));
    n.summary = "a < b && c > d".to_string();
    n.report = Some("s3://bucket/reports/r 1.html".to_string());
    let payload = slack_payload(&n);
    let text = payload["text"].as_str().unwrap();
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(text.contains("&lt;!channel&gt; &amp;"));
    assert!(text.contains("a &lt; b &amp;&amp; c &gt; d"));
    assert!(text.contains("`s3://bucket/reports/r 1.html`"));
    let header = payload["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(header.chars().count() <= 150);
}
