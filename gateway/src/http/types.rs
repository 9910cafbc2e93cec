//! Small value types shared by the routes: 64-bit integers that may arrive as strings, channels by
//! name or number, ids in URL paths, and the JSON answers built from oms-proto's wire views.

use std::borrow::Cow;

use oms_proto::{Allocation, ErrorCode, Response, WireError};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::problem::Problem;
use crate::wire_error::gateway;

/// A non-negative 64-bit integer sent as a JSON number or as a string of decimal digits (a
/// JavaScript or PHP client may not hold every 64-bit integer in a number).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct U64(pub u64);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<U64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(u64),
            Text(String),
        }
        match Either::deserialize(d) {
            Ok(Either::Number(n)) => Ok(U64(n)),
            Ok(Either::Text(text)) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().map(U64).map_err(|_| serde::de::Error::custom(format!("{text:?} exceeds 2^64 - 1")))
            }
            Ok(Either::Text(text)) => {
                Err(serde::de::Error::custom(format!("{text:?} is not a string of decimal digits")))
            }
            Err(_) => Err(serde::de::Error::custom("expected a non-negative integer or a string of decimal digits")),
        }
    }
}

impl PartialSchema for U64 {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Integer))
                    .minimum(Some(0))
                    .maximum(Some(u64::MAX as usize)),
            )
            // At most 19 digits: every such string fits in 64 bits.
            .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::String)).pattern(Some("^[0-9]{1,19}$")))
            .description(Some("A non-negative integer, or a string of decimal digits for values above 2^53."))
            .into()
    }
}

impl ToSchema for U64 {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("U64")
    }
}

/// A sales channel: `own`, `taobao`, `jd`, `douyin`, or a configured channel's number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Channel(pub u16);

/// Channel names and their numbers on the binary protocol (docs/PROTOCOL.md section 5.2).
pub const CHANNELS: [(&str, u16); 4] = [("own", 0), ("taobao", 1), ("jd", 2), ("douyin", 3)];

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Channel, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(u16),
            Name(String),
        }
        match Either::deserialize(d) {
            Ok(Either::Number(n)) => Ok(Channel(n)),
            Ok(Either::Name(name)) => Channel::parse(&name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown channel {name:?} (expected own, taobao, jd, douyin or a number)"
                ))
            }),
            Err(_) => {
                Err(serde::de::Error::custom("expected a channel name (own, taobao, jd, douyin) or a number 0..=65535"))
            }
        }
    }
}

impl Channel {
    /// A channel name, or its number in decimal (for URL paths).
    pub fn parse(text: &str) -> Option<Channel> {
        if let Some((_, n)) = CHANNELS.iter().find(|(name, _)| *name == text) {
            return Some(Channel(*n));
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Channel)
    }

    /// The channel's name when it has one.
    pub fn name(number: u16) -> Option<&'static str> {
        CHANNELS.iter().find(|(_, n)| *n == number).map(|(name, _)| *name)
    }
}

impl PartialSchema for Channel {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .enum_values(Some(CHANNELS.iter().map(|(name, _)| *name))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Integer))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                    .minimum(Some(0))
                    .maximum(Some(u16::MAX)),
            )
            .description(Some("The sales channel: own (0), taobao (1), jd (2), douyin (3), or a configured number."))
            .into()
    }
}

impl ToSchema for Channel {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Channel")
    }
}

/// A 64-bit id from a URL path segment (reservations, orders, shipments, waves, after-sales).
/// Not a number: 400. A number too large to be any id: the resource's "unknown" error (404).
pub fn path_id(text: &str, what: &str, unknown: ErrorCode) -> Result<u64, Problem> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::bad_request(format!("{what} id {text:?} is not a decimal number")));
    }
    text.parse::<u64>()
        .map_err(|_| Problem::on_route(WireError::new(unknown, format!("unknown {what} {text}")), &[unknown]))
}

/// A 32-bit id from a URL path segment (campaigns).
pub fn path_id32(text: &str, what: &str, unknown: ErrorCode) -> Result<u32, Problem> {
    let id = path_id(text, what, unknown)?;
    u32::try_from(id)
        .map_err(|_| Problem::on_route(WireError::new(unknown, format!("unknown {what} {text}")), &[unknown]))
}

/// One line of a reservation as held: the SKU and warehouse by code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllocationBody {
    /// SKU code.
    #[schema(example = "TSHIRT-RED-XL")]
    pub sku: String,
    /// Warehouse code.
    #[schema(example = "SH")]
    pub warehouse: String,
    #[schema(minimum = 1, maximum = 4294967295_u32, format = Int64)]
    pub qty: u32,
}

impl From<&Allocation> for AllocationBody {
    fn from(a: &Allocation) -> Self {
        AllocationBody { sku: a.sku.as_str().to_owned(), warehouse: a.warehouse.as_str().to_owned(), qty: a.qty }
    }
}

/// An answer the route did not expect (a bug): 500.
pub fn unexpected(response: &Response) -> Problem {
    Problem::new(gateway(ErrorCode::INTERNAL, format!("unexpected answer {:?}", std::mem::discriminant(response))))
}

/// A channel's order payload: one order object or an array of them, in the channel's own format
/// (checked by the server's intake, which reports each order's problems in its answer).
pub struct OrderPayload;

impl PartialSchema for OrderPayload {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::Object)))
            .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::Array)))
            .description(Some("The channel's order object, or an array of them."))
            .into()
    }
}

impl ToSchema for OrderPayload {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OrderPayload")
    }
}

/// Schema of a JSON document passed through from the server's JSON-bodied operations, described
/// in prose where its full shape lives (docs/ORDERS.md): an object with any members.
macro_rules! documented_object {
    ($name:ident, $description:literal) => {
        #[doc = $description]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::new(utoipa::openapi::schema::Type::Object))
                    .description(Some($description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}
pub(crate) use documented_object;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_integers_channels_and_path_ids() {
        // Checks the accepted spellings of 64-bit integers and channels, and that a path id that
        // is not a number is 400 while one too large for any id is 404.
        let parse = |text: &str| serde_json::from_str::<U64>(text).map(|v| v.0).ok();
        assert_eq!(parse("42"), Some(42));
        assert_eq!(parse("\"18446744073709551615\""), Some(u64::MAX));
        assert_eq!(parse("\"18446744073709551616\""), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("\"4x\""), None);
        assert_eq!(parse("1.5"), None);
        let channel = |text: &str| serde_json::from_str::<Channel>(text).map(|c| c.0).ok();
        assert_eq!(channel("\"taobao\""), Some(1));
        assert_eq!(channel("\"own\""), Some(0));
        assert_eq!(channel("7"), Some(7));
        assert_eq!(channel("\"amazon\""), None);
        assert_eq!(channel("70000"), None);
        assert_eq!(Channel::parse("12").map(|c| c.0), Some(12));
        let id =
            |text: &str| path_id(text, "reservation", ErrorCode::UNKNOWN_RESERVATION).map_err(|p| p.status.as_u16());
        assert_eq!(id("123"), Ok(123));
        assert_eq!(id("12a"), Err(400));
        assert_eq!(id(""), Err(400));
        assert_eq!(id("99999999999999999999"), Err(404));
    }
}
