//! Sales channel names shared by the CLI and other tools: the stable mapping from a channel's
//! name to the `u16` carried on the wire.

/// Known channels: (name, wire id).
pub const CHANNELS: [(&str, u16); 4] = [("own", 0), ("taobao", 1), ("jd", 2), ("douyin", 3)];

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?} (expected own, taobao, jd, douyin or a number 0-65535)")]
pub struct ChannelParseError(pub String);

/// A channel name (case-insensitive) or a number.
pub fn parse_channel(text: &str) -> Result<u16, ChannelParseError> {
    let trimmed = text.trim();
    if let Some((_, id)) = CHANNELS.iter().find(|(name, _)| name.eq_ignore_ascii_case(trimmed)) {
        return Ok(*id);
    }
    trimmed.parse::<u16>().map_err(|_| ChannelParseError(text.to_owned()))
}

/// The name of a known channel id.
pub fn channel_name(id: u16) -> Option<&'static str> {
    CHANNELS.iter().find(|(_, c)| *c == id).map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_garbage() {
        // Checks every named channel, numeric ids, case-insensitivity, and that junk is refused.
        assert_eq!(parse_channel("own"), Ok(0));
        assert_eq!(parse_channel("taobao"), Ok(1));
        assert_eq!(parse_channel("JD"), Ok(2));
        assert_eq!(parse_channel("douyin"), Ok(3));
        assert_eq!(parse_channel("17"), Ok(17));
        assert!(parse_channel("amazon").is_err());
        assert!(parse_channel("-1").is_err());
        assert!(parse_channel("70000").is_err());
        assert_eq!(channel_name(3), Some("douyin"));
        assert_eq!(channel_name(9), None);
    }
}
