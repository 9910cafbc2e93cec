//! What a webhook request carries: the body in each format, the signature headers or query
//! parameters, and how an answer is judged.
//!
//! - `json` (generic receivers): `{"event", "partition", "lsn", "at_ms", "data"}`. With a
//!   `secret`, `X-Omsd-Timestamp: <unix seconds>` and
//!   `X-Omsd-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the receiver
//!   recomputes it over the raw body and refuses stale timestamps (replays).
//! - `dingtalk` (group robot): a text message; with a `secret` (the robot's "加签" setting) the
//!   URL gets `timestamp=<ms>&sign=<base64 HMAC-SHA256(secret, "<ms>\n<secret>")>`; `keyword`
//!   starts the text (the "自定义关键词" setting); `at_mobiles` / `at_user_ids` / `at_all` mention
//!   people.
//! - `wecom` (WeChat Work group robot): a text message to `...?key=<key>`; mentions as
//!   `mentioned_mobile_list` / `mentioned_list`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::spool::Record;
use super::{Format, WebhookConfig};

type HmacSha256 = Hmac<Sha256>;

/// The generic receivers' signature headers.
pub const TIMESTAMP_HEADER: &str = "x-omsd-timestamp";
pub const SIGNATURE_HEADER: &str = "x-omsd-signature";

/// Longest text a robot message carries (WeCom caps content at 2048 bytes).
const ROBOT_TEXT_LIMIT: usize = 2000;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `sha256=<hex>` over `"<timestamp>.<body>"` (generic receivers).
pub fn generic_signature(secret: &str, timestamp_s: u64, body: &str) -> String {
    let message = format!("{timestamp_s}.{body}");
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), message.as_bytes())))
}

/// DingTalk's `sign`: base64 of HMAC-SHA256 keyed by the secret over `"<ms>\n<secret>"` (the
/// caller URL-encodes it as a query parameter).
pub fn dingtalk_sign(secret: &str, timestamp_ms: u64) -> String {
    let message = format!("{timestamp_ms}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

/// The request body of one record for this webhook.
pub fn body(hook: &WebhookConfig, record: &Record) -> Value {
    match hook.format {
        Format::Json => json!({
            "event": record.kind,
            "partition": record.partition,
            "lsn": record.lsn,
            "at_ms": record.at_ms,
            "data": record.data,
        }),
        Format::Dingtalk | Format::Wecom => {
            let mut content = String::new();
            if let Some(keyword) = hook.keyword.as_deref().filter(|k| !k.is_empty()) {
                content.push_str(keyword);
                content.push(' ');
            }
            content.push_str(&format!(
                "[omsd] {}: {} (partition {}, lsn {})",
                record.kind, record.summary, record.partition, record.lsn
            ));
            truncate(&mut content, ROBOT_TEXT_LIMIT);
            match hook.format {
                Format::Dingtalk => {
                    // DingTalk highlights a mobile only when "@<mobile>" is in the text too.
                    for mobile in &hook.at_mobiles {
                        content.push_str(&format!(" @{mobile}"));
                    }
                    let mut message = json!({"msgtype": "text", "text": {"content": content}});
                    if !hook.at_mobiles.is_empty() || !hook.at_user_ids.is_empty() || hook.at_all {
                        message["at"] = json!({
                            "atMobiles": hook.at_mobiles,
                            "atUserIds": hook.at_user_ids,
                            "isAtAll": hook.at_all,
                        });
                    }
                    message
                }
                _ => {
                    let mut text = json!({"content": content});
                    let mut users = hook.at_user_ids.clone();
                    if hook.at_all {
                        users.push("@all".to_owned());
                    }
                    if !users.is_empty() {
                        text["mentioned_list"] = json!(users);
                    }
                    if !hook.at_mobiles.is_empty() {
                        text["mentioned_mobile_list"] = json!(hook.at_mobiles);
                    }
                    json!({"msgtype": "text", "text": text})
                }
            }
        }
    }
}

/// 2xx is success; the robots also answer 200 with a non-zero `errcode` on failure (rate limit,
/// missing keyword, bad signature), which is a failure like an HTTP error.
pub fn check_answer(format: Format, status: u16, body: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    if format != Format::Json {
        if let Ok(value) = serde_json::from_str::<Value>(body) {
            if let Some(code) = value.get("errcode").and_then(Value::as_i64) {
                if code != 0 {
                    return Err(format!("errcode {code}: {}", value["errmsg"].as_str().unwrap_or_default()));
                }
            }
        }
    }
    Ok(())
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(format: Format) -> WebhookConfig {
        let toml =
            format!("url = \"http://127.0.0.1:1/x\"\nevents = [\"low_stock\"]\nformat = \"{}\"\n", format.name());
        toml::from_str(&toml).expect("config")
    }

    fn record() -> Record {
        Record {
            seq: 1,
            kind: "low_stock".into(),
            partition: 0,
            lsn: 42,
            at_ms: 1_700_000_000_000,
            data: json!({"sku_code": "TEA-1", "available": 2}),
            summary: "SKU TEA-1 is down to 2 available".into(),
        }
    }

    #[test]
    fn signatures_match_known_values() {
        // HMAC-SHA256 test vector (RFC 4231 case 2: key "Jefe") through the generic format, and
        // DingTalk's sign recomputed by hand from its definition.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(
            generic_signature("Jefe", 1, " do ya want for nothing?").len(),
            "sha256=".len() + 64,
            "hex of 32 bytes"
        );
        let sign = dingtalk_sign("SECabc", 1_700_000_000_000);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"SECabc", b"1700000000000\nSECabc"));
        assert_eq!(sign, expected);
        assert_eq!(sign.len(), 44, "base64 of 32 bytes");
    }

    #[test]
    fn robot_messages_carry_the_keyword_and_mentions() {
        // DingTalk: keyword first, "@mobile" in the text and the `at` block; WeCom: mention lists.
        let mut ding = hook(Format::Dingtalk);
        ding.keyword = Some("库存".into());
        ding.at_mobiles = vec!["13812345678".into()];
        let body = body(&ding, &record());
        let content = body["text"]["content"].as_str().expect("text");
        assert!(content.starts_with("库存 [omsd] low_stock: SKU TEA-1"), "{content}");
        assert!(content.ends_with(" @13812345678"));
        assert_eq!(body["at"]["atMobiles"], json!(["13812345678"]));
        assert_eq!(body["at"]["isAtAll"], false);
        let plain = super::body(&hook(Format::Dingtalk), &record());
        assert!(plain.get("at").is_none(), "no mentions, no at block: {plain}");

        let mut wecom = hook(Format::Wecom);
        wecom.at_all = true;
        wecom.at_mobiles = vec!["13812345678".into()];
        let body = super::body(&wecom, &record());
        assert_eq!(body["text"]["mentioned_list"], json!(["@all"]));
        assert_eq!(body["text"]["mentioned_mobile_list"], json!(["13812345678"]));
    }

    #[test]
    fn robot_errors_in_a_200_answer_are_failures() {
        // Checks status, errcode and the JSON format ignoring errcode.
        assert!(check_answer(Format::Dingtalk, 200, r#"{"errcode":0}"#).is_ok());
        assert!(check_answer(Format::Dingtalk, 200, r#"{"errcode":310000,"errmsg":"sign not match"}"#).is_err());
        assert!(check_answer(Format::Wecom, 500, "").is_err());
        assert!(check_answer(Format::Json, 200, r#"{"errcode":1}"#).is_ok());
    }
}
