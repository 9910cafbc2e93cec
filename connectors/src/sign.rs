//! Request signatures of the three open platforms. Pure functions of the parameters and the
//! secret, shared by the clients (which sign) and the simulators (which check).
//!
//! - Taobao/Tmall TOP: parameters sorted by name, `name` + `value` concatenated (empty values
//!   and `sign` left out); `md5`: MD5(secret + text + secret), `hmac`: HMAC-MD5(secret, text),
//!   `hmac-sha256`: HMAC-SHA256(secret, text); upper-case hex.
//! - JD (routerjson): the same concatenation of the system parameters and `360buy_param_json`,
//!   MD5(secret + text + secret), upper-case hex.
//! - Douyin shop (doudian): secret + "app_key" + key + "method" + method + "param_json" + json +
//!   "timestamp" + ts + "v" + v + secret, with `param_json` keys sorted and no spaces;
//!   `hmac-sha256`: HMAC-SHA256(secret, text), `md5`: MD5(text); lower-case hex.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use serde_json::Value;
use sha2::Sha256;

/// Taobao TOP `sign_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopSignMethod {
    Md5,
    HmacMd5,
    HmacSha256,
}

impl TopSignMethod {
    pub fn name(self) -> &'static str {
        match self {
            TopSignMethod::Md5 => "md5",
            TopSignMethod::HmacMd5 => "hmac",
            TopSignMethod::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(name: &str) -> Option<TopSignMethod> {
        match name {
            "md5" | "" => Some(TopSignMethod::Md5),
            "hmac" => Some(TopSignMethod::HmacMd5),
            "hmac-sha256" => Some(TopSignMethod::HmacSha256),
            _ => None,
        }
    }
}

/// Douyin `sign_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DouyinSignMethod {
    Md5,
    HmacSha256,
}

impl DouyinSignMethod {
    pub fn name(self) -> &'static str {
        match self {
            DouyinSignMethod::Md5 => "md5",
            DouyinSignMethod::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(name: &str) -> Option<DouyinSignMethod> {
        match name {
            "md5" | "" => Some(DouyinSignMethod::Md5),
            "hmac-sha256" => Some(DouyinSignMethod::HmacSha256),
            _ => None,
        }
    }
}

fn hex(bytes: &[u8], upper: bool) -> String {
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    let digits = if upper { UPPER } else { LOWER };
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(digits[usize::from(b >> 4)]));
        text.push(char::from(digits[usize::from(b & 0xf)]));
    }
    text
}

fn md5(text: &[u8]) -> Vec<u8> {
    Md5::digest(text).to_vec()
}

fn hmac_md5(key: &[u8], text: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; the error branch cannot happen.
    match <Hmac<Md5> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(text);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hmac_sha256(key: &[u8], text: &[u8]) -> Vec<u8> {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(text);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `name1value1name2value2...` of the sorted parameters, without `sign` and empty values.
fn concatenated(params: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (name, value) in params {
        if name == "sign" || name.is_empty() || value.is_empty() {
            continue;
        }
        text.push_str(name);
        text.push_str(value);
    }
    text
}

/// The TOP signature of `params` (every parameter that is sent, `sign` excluded).
pub fn top_sign(params: &BTreeMap<String, String>, secret: &str, method: TopSignMethod) -> String {
    let text = concatenated(params);
    let digest = match method {
        TopSignMethod::Md5 => md5(format!("{secret}{text}{secret}").as_bytes()),
        TopSignMethod::HmacMd5 => hmac_md5(secret.as_bytes(), text.as_bytes()),
        TopSignMethod::HmacSha256 => hmac_sha256(secret.as_bytes(), text.as_bytes()),
    };
    hex(&digest, true)
}

/// The JD router signature of `params` (system parameters and `360buy_param_json`).
pub fn jd_sign(params: &BTreeMap<String, String>, secret: &str) -> String {
    let text = concatenated(params);
    hex(&md5(format!("{secret}{text}{secret}").as_bytes()), true)
}

/// The Douyin open API signature.
pub fn douyin_sign(
    app_key: &str,
    method: &str,
    param_json: &str,
    timestamp: &str,
    version: &str,
    secret: &str,
    sign_method: DouyinSignMethod,
) -> String {
    let text =
        format!("{secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v{version}{secret}");
    let digest = match sign_method {
        DouyinSignMethod::Md5 => md5(text.as_bytes()),
        DouyinSignMethod::HmacSha256 => hmac_sha256(secret.as_bytes(), text.as_bytes()),
    };
    hex(&digest, false)
}

/// JSON with object keys sorted at every level and no insignificant whitespace (what Douyin's
/// `param_json` must be, and a stable form for JD's `360buy_param_json`).
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in ordered {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Constant-time comparison of two signatures (the simulators' check).
pub fn signatures_match(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x.to_ascii_uppercase() ^ y.to_ascii_uppercase())) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn top_and_jd_match_digests_computed_elsewhere() {
        // Expected values computed with Python's hashlib/hmac from the documented constructions;
        // empty values and `sign` do not count.
        let p = params(&[
            ("method", "taobao.item.get"),
            ("app_key", "12345"),
            ("fields", "num_iid"),
            ("session", ""),
            ("sign", "ignored"),
        ]);
        assert_eq!(top_sign(&p, "secret", TopSignMethod::Md5), "F114B231A202AB88D275D45B3DE001D0");
        assert_eq!(top_sign(&p, "secret", TopSignMethod::HmacMd5), "AB8ED54606B0757170FEDA891CB9255F");
        assert_eq!(
            top_sign(&p, "secret", TopSignMethod::HmacSha256),
            "75990BC710872E444BE2F943C6E070F764780D7AC09C7C9421239CF6DC90D149"
        );
        let jd = params(&[
            ("360buy_param_json", r#"{"skuId":1}"#),
            ("access_token", "t"),
            ("app_key", "12345"),
            ("method", "jingdong.stock.write.updateSkuStock"),
            ("timestamp", "2026-11-11 00:00:00"),
            ("v", "2.0"),
        ]);
        assert_eq!(jd_sign(&jd, "secret"), "252BCF408E105E4D0D8096F96ADB8102");
    }

    #[test]
    fn known_digests() {
        // Fixed vectors: RFC 1321 MD5("abc"), RFC 4231 case 2 HMAC-SHA256("Jefe", ...), RFC 2104
        // HMAC-MD5("Jefe", ...). They pin the primitives the three signatures are built from.
        assert_eq!(hex(&md5(b"abc"), false), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?"), false),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(hex(&hmac_md5(b"Jefe", b"what do ya want for nothing?"), false), "750c783e6ab0b503eaa86e310a5db738");
    }

    #[test]
    fn douyin_signs_sorted_param_json() {
        // The param_json is canonical (sorted keys, no spaces) and the signature changes with any
        // byte of it; md5 and hmac-sha256 differ.
        let json = canonical_json(&serde_json::json!({"b": 1, "a": {"y": 2, "x": [3, {"d": 4, "c": 5}]}}));
        assert_eq!(json, r#"{"a":{"x":[3,{"c":5,"d":4}],"y":2},"b":1}"#);
        let a = douyin_sign("k", "sku.syncStock", &json, "2026-11-11 00:00:00", "2", "s", DouyinSignMethod::HmacSha256);
        let b = douyin_sign("k", "sku.syncStock", &json, "2026-11-11 00:00:01", "2", "s", DouyinSignMethod::HmacSha256);
        let c = douyin_sign("k", "sku.syncStock", &json, "2026-11-11 00:00:00", "2", "s", DouyinSignMethod::Md5);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 64);
        assert_eq!(
            c,
            hex(
                &md5(format!("sapp_keykmethodsku.syncStockparam_json{json}timestamp2026-11-11 00:00:00v2s").as_bytes()),
                false
            )
        );
    }

    #[test]
    fn comparison_ignores_hex_case_only() {
        assert!(signatures_match("ABCDEF", "abcdef"));
        assert!(!signatures_match("ABCDEF", "ABCDEE"));
        assert!(!signatures_match("ABC", "ABCD"));
    }
}
