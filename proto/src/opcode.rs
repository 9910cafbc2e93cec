//! Opcodes: stable numbers, never reused (docs/PROTOCOL.md section 4).

/// How an opcode's payloads are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// Fixed binary layouts (the hot path and the log subscription).
    Binary,
    /// One UTF-8 JSON document each way.
    Json,
}

macro_rules! opcodes {
    ($($name:ident = $value:literal, $text:literal, $kind:ident;)*) => {
        /// An operation. A response frame carries its request's opcode.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Opcode {
            $($name = $value,)*
        }

        impl Opcode {
            /// Every opcode, ascending.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name,)*];

            pub fn from_u16(value: u16) -> Option<Opcode> {
                match value {
                    $($value => Some(Opcode::$name),)*
                    _ => None,
                }
            }

            /// The snake_case name used in documents, metrics and logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(Opcode::$name => $text,)*
                }
            }

            pub fn body(self) -> BodyKind {
                match self {
                    $(Opcode::$name => BodyKind::$kind,)*
                }
            }
        }
    };
}

opcodes! {
    Hello = 1, "hello", Binary;
    Ping = 2, "ping", Binary;
    Reserve = 10, "reserve", Binary;
    ReserveBatch = 11, "reserve_batch", Binary;
    Confirm = 12, "confirm", Binary;
    Release = 13, "release", Binary;
    PayBalance = 14, "pay_balance", Binary;
    Ship = 15, "ship", Binary;
    GetStock = 20, "get_stock", Binary;
    GetReservation = 21, "get_reservation", Binary;
    LookupSkus = 22, "lookup_skus", Json;
    ExportStock = 23, "export_stock", Json;
    GetCampaign = 24, "get_campaign", Json;
    Audit = 25, "audit", Json;
    DefineWarehouse = 30, "define_warehouse", Json;
    DefineSku = 31, "define_sku", Json;
    DefineKit = 32, "define_kit", Json;
    StockOp = 33, "stock_op", Json;
    CreateFlashSale = 34, "create_flash_sale", Json;
    CreatePresale = 35, "create_presale", Json;
    SetChannelPolicy = 36, "set_channel_policy", Json;
    Subscribe = 40, "subscribe", Binary;
    Promote = 41, "promote", Json;
    ReplicaAck = 42, "replica_ack", Binary;
    OrderImport = 50, "order_import", Json;
    OrderGet = 51, "order_get", Json;
    OrderList = 52, "order_list", Json;
    OrderApprove = 53, "order_approve", Json;
    OrderReject = 54, "order_reject", Json;
    OrderCancel = 55, "order_cancel", Json;
    OrderAllocate = 56, "order_allocate", Json;
    WaveCreate = 57, "wave_create", Json;
    WaveGet = 58, "wave_get", Json;
    ShipmentPack = 59, "shipment_pack", Json;
    ShipmentShip = 60, "shipment_ship", Json;
    ShipmentDeliver = 61, "shipment_deliver", Json;
    TrackAdd = 62, "track_add", Json;
    AfterSaleCreate = 63, "after_sale_create", Json;
    AfterSaleReceive = 64, "after_sale_receive", Json;
    RulesReload = 65, "rules_reload", Json;
    Waybill = 66, "waybill", Json;
    ShopList = 67, "shop_list", Json;
    ShopStatus = 68, "shop_status", Json;
    ShopSync = 69, "shop_sync", Json;
    OrderExceptions = 70, "order_exceptions", Json;
    OrderResolve = 71, "order_resolve", Json;
    OrderPage = 72, "order_page", Json;
    OrderHold = 73, "order_hold", Json;
    OrderUnhold = 74, "order_unhold", Json;
    WaveScan = 75, "wave_scan", Json;
    WaveOverride = 76, "wave_override", Json;
}

impl std::fmt::Display for Opcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), *self as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_zero_is_not_an_opcode() {
        // Checks every opcode maps back from its number and that 0 (connection-level errors)
        // and 100 (v1's response opcode) are not opcodes.
        for op in Opcode::ALL {
            assert_eq!(Opcode::from_u16(*op as u16), Some(*op));
        }
        assert_eq!(Opcode::from_u16(0), None);
        assert_eq!(Opcode::from_u16(100), None);
        assert_eq!(Opcode::ALL.len(), 51);
    }
}
