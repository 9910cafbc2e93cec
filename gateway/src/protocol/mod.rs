//! The omsd wire protocol, version 1: length-prefixed frames over TCP carrying rkyv payloads.
//!
//! Frame: `{ len: u32 LE | opcode: u16 LE | flags: u16 LE | request_id: u64 LE | payload }`, where
//! `len` counts every byte after itself (so `len >= 12`). See docs/PROTOCOL.md for the full text.
//! Every payload read from the network is validated (checked rkyv access) before use, and no
//! buffer is ever sized by a length the peer chose beyond `max_frame_bytes`.

mod frame;
mod messages;
mod roles;

pub use frame::{encode_frame, FrameDecoder, FrameError, FrameHeader, FRAME_HEADER_LEN, LENGTH_PREFIX_LEN};
pub use messages::*;
pub use roles::{Role, RoleParseError};

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u16 = 1;
/// First four bytes of a Hello payload's `magic` field: "OMS1".
pub const HELLO_MAGIC: u32 = u32::from_le_bytes(*b"OMS1");
/// Default bound on one frame (header + payload).
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 1 << 20;
/// Default bound on requests in flight on one connection.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4096;
/// Most reservations in one batch frame.
pub const MAX_BATCH: usize = 1024;

/// Opcodes: stable numbers, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum Opcode {
    Hello = 1,
    Ping = 2,
    Reserve = 10,
    ReserveBatch = 11,
    Confirm = 12,
    Release = 13,
    PayBalance = 14,
    Ship = 15,
    GetStock = 20,
    GetReservation = 21,
    LookupSkus = 22,
    ExportStock = 23,
    GetCampaign = 24,
    Audit = 25,
    DefineWarehouse = 30,
    DefineSku = 31,
    DefineKit = 32,
    StockOp = 33,
    CreateFlashSale = 34,
    CreatePresale = 35,
    SetChannelPolicy = 36,
    Subscribe = 40,
    Promote = 41,
    ReplicaAck = 42,
    OrderImport = 50,
    OrderGet = 51,
    OrderList = 52,
    OrderApprove = 53,
    OrderReject = 54,
    OrderCancel = 55,
    OrderAllocate = 56,
    WaveCreate = 57,
    WaveGet = 58,
    ShipmentPack = 59,
    ShipmentShip = 60,
    ShipmentDeliver = 61,
    TrackAdd = 62,
    AfterSaleCreate = 63,
    AfterSaleReceive = 64,
    RulesReload = 65,
    Waybill = 66,
    /// Marketplace shops and the order exception desk: a JSON body (`{"op": ...}`), a JSON answer.
    Channels = 67,
    Response = 100,
}

impl Opcode {
    pub const ALL: [Opcode; 42] = [
        Opcode::Hello,
        Opcode::Ping,
        Opcode::Reserve,
        Opcode::ReserveBatch,
        Opcode::Confirm,
        Opcode::Release,
        Opcode::PayBalance,
        Opcode::Ship,
        Opcode::GetStock,
        Opcode::GetReservation,
        Opcode::LookupSkus,
        Opcode::ExportStock,
        Opcode::GetCampaign,
        Opcode::Audit,
        Opcode::DefineWarehouse,
        Opcode::DefineSku,
        Opcode::DefineKit,
        Opcode::StockOp,
        Opcode::CreateFlashSale,
        Opcode::CreatePresale,
        Opcode::SetChannelPolicy,
        Opcode::Subscribe,
        Opcode::Promote,
        Opcode::ReplicaAck,
        Opcode::OrderImport,
        Opcode::OrderGet,
        Opcode::OrderList,
        Opcode::OrderApprove,
        Opcode::OrderReject,
        Opcode::OrderCancel,
        Opcode::OrderAllocate,
        Opcode::WaveCreate,
        Opcode::WaveGet,
        Opcode::ShipmentPack,
        Opcode::ShipmentShip,
        Opcode::ShipmentDeliver,
        Opcode::TrackAdd,
        Opcode::AfterSaleCreate,
        Opcode::AfterSaleReceive,
        Opcode::RulesReload,
        Opcode::Waybill,
        Opcode::Channels,
    ];

    pub fn from_u16(value: u16) -> Option<Opcode> {
        if value == Opcode::Response as u16 {
            return Some(Opcode::Response);
        }
        Opcode::ALL.iter().copied().find(|op| *op as u16 == value)
    }

    pub fn name(self) -> &'static str {
        match self {
            Opcode::Hello => "hello",
            Opcode::Ping => "ping",
            Opcode::Reserve => "reserve",
            Opcode::ReserveBatch => "reserve_batch",
            Opcode::Confirm => "confirm",
            Opcode::Release => "release",
            Opcode::PayBalance => "pay_balance",
            Opcode::Ship => "ship",
            Opcode::GetStock => "get_stock",
            Opcode::GetReservation => "get_reservation",
            Opcode::LookupSkus => "lookup_skus",
            Opcode::ExportStock => "export_stock",
            Opcode::GetCampaign => "get_campaign",
            Opcode::Audit => "audit",
            Opcode::DefineWarehouse => "define_warehouse",
            Opcode::DefineSku => "define_sku",
            Opcode::DefineKit => "define_kit",
            Opcode::StockOp => "stock_op",
            Opcode::CreateFlashSale => "create_flash_sale",
            Opcode::CreatePresale => "create_presale",
            Opcode::SetChannelPolicy => "set_channel_policy",
            Opcode::Subscribe => "subscribe",
            Opcode::Promote => "promote",
            Opcode::ReplicaAck => "replica_ack",
            Opcode::OrderImport => "order_import",
            Opcode::OrderGet => "order_get",
            Opcode::OrderList => "order_list",
            Opcode::OrderApprove => "order_approve",
            Opcode::OrderReject => "order_reject",
            Opcode::OrderCancel => "order_cancel",
            Opcode::OrderAllocate => "order_allocate",
            Opcode::WaveCreate => "wave_create",
            Opcode::WaveGet => "wave_get",
            Opcode::ShipmentPack => "shipment_pack",
            Opcode::ShipmentShip => "shipment_ship",
            Opcode::ShipmentDeliver => "shipment_deliver",
            Opcode::TrackAdd => "track_add",
            Opcode::AfterSaleCreate => "after_sale_create",
            Opcode::AfterSaleReceive => "after_sale_receive",
            Opcode::RulesReload => "rules_reload",
            Opcode::Waybill => "waybill",
            Opcode::Channels => "channels",
            Opcode::Response => "response",
        }
    }
}
