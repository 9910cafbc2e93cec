//! [`Code`]: a SKU or warehouse code held inline (at most 64 bytes of UTF-8), so answers that
//! name codes need no heap allocation per code on the server's hot path.

use crate::limits::CODE_LIMIT;

/// A SKU or warehouse code as people read it (`TSHIRT-RED-XL`, `SH`). The empty code means "none".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    len: u8,
    bytes: [u8; CODE_LIMIT],
}

/// A string longer than [`CODE_LIMIT`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("code {0:?} is longer than 64 bytes")]
pub struct CodeTooLong(pub String);

impl Code {
    pub const EMPTY: Code = Code { len: 0, bytes: [0; CODE_LIMIT] };

    /// The code for `text`, or an error when it is longer than 64 bytes.
    pub fn new(text: &str) -> Result<Code, CodeTooLong> {
        if text.len() > CODE_LIMIT {
            return Err(CodeTooLong(text.to_owned()));
        }
        let mut bytes = [0; CODE_LIMIT];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Ok(Code { len: text.len() as u8, bytes })
    }

    /// The code for `text` cut to 64 bytes at a character boundary (for codes known valid).
    pub fn truncated(text: &str) -> Code {
        let mut end = text.len().min(CODE_LIMIT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        match Code::new(&text[..end]) {
            Ok(code) => code,
            Err(_) => Code::EMPTY,
        }
    }

    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..usize::from(self.len)];
        // Only ever built from a `&str` cut at a character boundary.
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `None` for the empty code.
    pub fn non_empty(self) -> Option<Code> {
        (!self.is_empty()).then_some(self)
    }
}

impl Default for Code {
    fn default() -> Self {
        Code::EMPTY
    }
}

impl std::ops::Deref for Code {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TryFrom<&str> for Code {
    type Error = CodeTooLong;
    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Code::new(text)
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Code::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_hold_up_to_64_bytes_and_cut_at_characters() {
        // Checks the 64-byte bound and that truncation never splits a UTF-8 character.
        assert_eq!(Code::new("SH").unwrap().as_str(), "SH");
        assert!(Code::new(&"x".repeat(64)).is_ok());
        assert!(Code::new(&"x".repeat(65)).is_err());
        let long = "é".repeat(40); // 80 bytes
        assert_eq!(Code::truncated(&long).as_str(), "é".repeat(32));
        assert!(Code::EMPTY.non_empty().is_none());
    }
}
