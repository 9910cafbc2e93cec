//! Requests (client -> server): one type for both directions. A client builds a [`Request`] from
//! its own slices and encodes it; a server decodes a [`Request`] that borrows the read buffer, so
//! the hot path copies nothing before building its engine command (docs/PROTOCOL.md sections 3-8).
//!
//! Decoding validates the whole payload once (lengths, tags, UTF-8, limits, no trailing bytes);
//! the lazily iterated parts ([`Lines`], [`Batch`]) then re-read bytes already known to be valid.

use crate::codec::{Buffer, DecodeError, EncodeError, Reader, Writer};
use crate::frame::{write_frame, FrameHeader};
use crate::limits::{Limits, CODE_LIMIT, HELLO_STRING_LIMIT, IDEMPOTENCY_KEY_LIMIT, MAX_BATCH};
use crate::opcode::{BodyKind, Opcode};
use crate::ErrorCode;

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u16 = 2;
/// The first four bytes of a Hello payload.
pub const HELLO_MAGIC: [u8; 4] = *b"OMS2";

/// A SKU named by the shop's code or by the server's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkuRef<'a> {
    Code(&'a str),
    Id(u32),
}

const SKU_BY_CODE: u8 = 0;
const SKU_BY_ID: u8 = 1;

impl SkuRef<'_> {
    fn encode<B: Buffer>(&self, w: &mut Writer<'_, B>) -> Result<(), EncodeError> {
        match *self {
            SkuRef::Code(code) => {
                if code.is_empty() {
                    return Err(EncodeError::Empty { field: "sku code" });
                }
                w.u8(SKU_BY_CODE);
                w.str("sku code", code, CODE_LIMIT)
            }
            SkuRef::Id(id) => {
                w.u8(SKU_BY_ID);
                w.u32(id);
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for SkuRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkuRef::Code(code) => f.write_str(code),
            SkuRef::Id(id) => write!(f, "#{id}"),
        }
    }
}

#[inline]
fn decode_sku<'a>(r: &mut Reader<'a>) -> Result<SkuRef<'a>, DecodeError> {
    match r.u8("sku kind")? {
        SKU_BY_CODE => {
            let len = usize::from(r.u16("sku code")?);
            if len == 0 || len > CODE_LIMIT {
                return Err(DecodeError::InvalidCode { len, limit: CODE_LIMIT });
            }
            let bytes = r.slice("sku code", len)?;
            Ok(SkuRef::Code(crate::codec::utf8(bytes, "sku code")?))
        }
        SKU_BY_ID => Ok(SkuRef::Id(r.u32("sku id")?)),
        value => Err(DecodeError::InvalidTag { field: "sku kind", value }),
    }
}

/// One line of a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub qty: u32,
    pub sku: SkuRef<'a>,
}

/// The lines of a reservation: the caller's slice (encoding) or validated wire bytes (decoded).
#[derive(Clone, Copy)]
pub enum Lines<'a> {
    Slice(&'a [Line<'a>]),
    Wire(WireLines<'a>),
}

/// Line bytes the decoder has validated (lengths, tags, UTF-8). Only the decoder makes one, which
/// is what lets iteration skip the checks.
#[derive(Clone, Copy)]
pub struct WireLines<'a> {
    bytes: &'a [u8],
    count: u16,
}

impl<'a> Lines<'a> {
    pub fn len(&self) -> usize {
        match self {
            Lines::Slice(lines) => lines.len(),
            Lines::Wire(wire) => usize::from(wire.count),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> LinesIter<'a> {
        match *self {
            Lines::Slice(lines) => LinesIter::Slice(lines.iter()),
            Lines::Wire(wire) => LinesIter::Wire { trusted: Trusted(wire.bytes), left: wire.count },
        }
    }
}

impl PartialEq for Lines<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Lines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

pub enum LinesIter<'a> {
    Slice(std::slice::Iter<'a, Line<'a>>),
    Wire { trusted: Trusted<'a>, left: u16 },
}

impl<'a> Iterator for LinesIter<'a> {
    type Item = Line<'a>;

    #[inline]
    fn next(&mut self) -> Option<Line<'a>> {
        match self {
            LinesIter::Slice(iter) => iter.next().copied(),
            LinesIter::Wire { trusted, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let line = trusted.line();
                // The bytes were validated when the request was decoded.
                debug_assert!(line.is_some(), "validated line failed to decode");
                line
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            LinesIter::Slice(iter) => iter.len(),
            LinesIter::Wire { left, .. } => usize::from(*left),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for LinesIter<'_> {}

impl<'a> Line<'a> {
    /// `qty` units of the SKU with this code.
    pub const fn code(code: &'a str, qty: u32) -> Line<'a> {
        Line { qty, sku: SkuRef::Code(code) }
    }

    /// `qty` units of the SKU with this id.
    pub const fn id(id: u32, qty: u32) -> Line<'a> {
        Line { qty, sku: SkuRef::Id(id) }
    }
}

#[inline]
fn decode_line<'a>(r: &mut Reader<'a>) -> Result<Line<'a>, DecodeError> {
    let qty = r.u32("line qty")?;
    let sku = decode_sku(r)?;
    Ok(Line { qty, sku })
}

/// A reservation request (opcode 10; the items of opcode 11).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reserve<'a> {
    pub ttl_ms: u64,
    pub customer: u64,
    pub channel: u16,
    pub campaign: Option<u32>,
    /// Empty for none.
    pub idempotency_key: &'a str,
    pub lines: Lines<'a>,
}

impl<'a> Reserve<'a> {
    /// A reservation of `lines` held for `ttl_ms`: no idempotency key, customer 0, own channel
    /// (0), no campaign. Chain the setters below for the rest.
    pub const fn new(lines: &'a [Line<'a>], ttl_ms: u64) -> Reserve<'a> {
        Reserve { ttl_ms, customer: 0, channel: 0, campaign: None, idempotency_key: "", lines: Lines::Slice(lines) }
    }

    pub const fn key(mut self, idempotency_key: &'a str) -> Reserve<'a> {
        self.idempotency_key = idempotency_key;
        self
    }

    pub const fn customer(mut self, customer: u64) -> Reserve<'a> {
        self.customer = customer;
        self
    }

    pub const fn channel(mut self, channel: u16) -> Reserve<'a> {
        self.channel = channel;
        self
    }

    pub const fn campaign(mut self, campaign: Option<u32>) -> Reserve<'a> {
        self.campaign = campaign;
        self
    }

    fn encode<B: Buffer>(&self, w: &mut Writer<'_, B>) -> Result<(), EncodeError> {
        w.u64(self.ttl_ms);
        w.u64(self.customer);
        w.u16(self.channel);
        w.opt_u32(self.campaign);
        w.str("idempotency_key", self.idempotency_key, IDEMPOTENCY_KEY_LIMIT)?;
        w.count("lines", self.lines.len(), usize::from(u16::MAX))?;
        for line in self.lines.iter() {
            w.u32(line.qty);
            line.sku.encode(w)?;
        }
        Ok(())
    }
}

#[inline]
fn decode_reserve<'a>(r: &mut Reader<'a>, limits: &Limits) -> Result<Reserve<'a>, DecodeError> {
    // The fixed head (ttl_ms, customer, channel, campaign) in one bounds check.
    let head: [u8; 23] = r.array("reserve head")?;
    let mut h = Reader::new(&head);
    let ttl_ms = h.u64("ttl_ms")?;
    let customer = h.u64("customer")?;
    let channel = h.u16("channel")?;
    let campaign = h.opt_u32("campaign")?;
    let idempotency_key = r.str("idempotency_key", IDEMPOTENCY_KEY_LIMIT)?;
    let count = r.u16("lines")?;
    if u32::from(count) > limits.max_lines {
        return Err(DecodeError::TooManyLines { count: usize::from(count), limit: limits.max_lines as usize });
    }
    let start = r.rest();
    for _ in 0..count {
        decode_line(r)?;
    }
    let bytes = &start[..start.len() - r.remaining()];
    let lines = Lines::Wire(WireLines { bytes, count });
    Ok(Reserve { ttl_ms, customer, channel, campaign, idempotency_key, lines })
}

/// Re-reads bytes the decoder validated: bounds are still checked (a bug must not become a
/// panic or an out-of-bounds read), UTF-8 is not checked again.
#[derive(Clone, Copy)]
pub struct Trusted<'a>(&'a [u8]);

impl<'a> Trusted<'a> {
    #[inline]
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    #[inline]
    fn str(&mut self) -> Option<&'a str> {
        let len = usize::from(u16::from_le_bytes(self.take()?));
        if self.0.len() < len {
            return None;
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // Safety: a `Trusted` only reads the bytes of a `WireLines` or `WireBatch`, which only
        // `decode_request` makes, after `Reader::str` / `decode_sku` checked every string in them
        // with `std::str::from_utf8`; the lengths read here are the same lengths, in the same order.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    #[inline]
    fn line(&mut self) -> Option<Line<'a>> {
        let qty = u32::from_le_bytes(self.take()?);
        let [kind] = self.take()?;
        let sku = match kind {
            SKU_BY_CODE => SkuRef::Code(self.str()?),
            _ => SkuRef::Id(u32::from_le_bytes(self.take()?)),
        };
        Some(Line { qty, sku })
    }

    fn reserve(&mut self) -> Option<Reserve<'a>> {
        let ttl_ms = u64::from_le_bytes(self.take()?);
        let customer = u64::from_le_bytes(self.take()?);
        let channel = u16::from_le_bytes(self.take()?);
        let [present, campaign @ ..] = self.take::<5>()?;
        let campaign = (present == 1).then(|| u32::from_le_bytes(campaign));
        let idempotency_key = self.str()?;
        let count = u16::from_le_bytes(self.take()?);
        let start = self.0;
        for _ in 0..count {
            self.line()?;
        }
        let bytes = &start[..start.len() - self.0.len()];
        let lines = Lines::Wire(WireLines { bytes, count });
        Some(Reserve { ttl_ms, customer, channel, campaign, idempotency_key, lines })
    }
}

/// The carts of a batch (opcode 11): the caller's slice, or validated wire bytes.
#[derive(Clone, Copy)]
pub enum Batch<'a> {
    Slice(&'a [Reserve<'a>]),
    Wire(WireBatch<'a>),
}

/// Batch bytes the decoder has validated; only the decoder makes one.
#[derive(Clone, Copy)]
pub struct WireBatch<'a> {
    bytes: &'a [u8],
    count: u16,
}

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        match self {
            Batch::Slice(items) => items.len(),
            Batch::Wire(wire) => usize::from(wire.count),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> BatchIter<'a> {
        match *self {
            Batch::Slice(items) => BatchIter::Slice(items.iter()),
            Batch::Wire(wire) => BatchIter::Wire { trusted: Trusted(wire.bytes), left: wire.count },
        }
    }
}

impl PartialEq for Batch<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

pub enum BatchIter<'a> {
    Slice(std::slice::Iter<'a, Reserve<'a>>),
    Wire { trusted: Trusted<'a>, left: u16 },
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Reserve<'a>;

    fn next(&mut self) -> Option<Reserve<'a>> {
        match self {
            BatchIter::Slice(iter) => iter.next().copied(),
            BatchIter::Wire { trusted, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let reserve = trusted.reserve();
                debug_assert!(reserve.is_some(), "validated batch item failed to decode");
                reserve
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            BatchIter::Slice(iter) => iter.len(),
            BatchIter::Wire { left, .. } => usize::from(*left),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

/// The handshake (opcode 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    pub magic: [u8; 4],
    pub version: u16,
    pub features: u32,
    /// Empty for none.
    pub api_key: &'a str,
    pub client: &'a str,
}

impl<'a> Hello<'a> {
    /// This build's Hello.
    pub fn new(api_key: &'a str, client: &'a str) -> Hello<'a> {
        Hello { magic: HELLO_MAGIC, version: PROTOCOL_VERSION, features: 0, api_key, client }
    }

    /// The server's checks of a decoded Hello before the key: magic, then version.
    pub fn check(&self) -> Result<(), (ErrorCode, String)> {
        if self.magic != HELLO_MAGIC {
            return Err((ErrorCode::BAD_FRAME, format!("bad hello magic {:02x?} (expected \"OMS2\")", self.magic)));
        }
        if self.version != PROTOCOL_VERSION {
            return Err((
                ErrorCode::UNSUPPORTED_VERSION,
                format!("protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}", self.version),
            ));
        }
        Ok(())
    }
}

/// Start a log subscription (opcode 40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub from_lsn: u64,
    /// `None`: every partition.
    pub partition: Option<u32>,
    pub bootstrap: bool,
}

/// A request, borrowing its strings and repeated parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Request<'a> {
    Hello(Hello<'a>),
    Ping,
    Reserve(Reserve<'a>),
    ReserveBatch(Batch<'a>),
    Confirm {
        id: u64,
    },
    Release {
        id: u64,
    },
    PayBalance {
        id: u64,
    },
    Ship {
        id: u64,
    },
    GetStock {
        sku: SkuRef<'a>,
    },
    GetReservation {
        id: u64,
    },
    Subscribe(Subscribe),
    /// Never answered (docs/PROTOCOL.md section 8).
    ReplicaAck {
        partition: u32,
        durable_lsn: u64,
    },
    /// Any JSON-bodied operation: the body as sent (see [`crate::json`] for the typed forms).
    Json {
        opcode: Opcode,
        body: &'a str,
    },
}

impl Request<'_> {
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Hello(_) => Opcode::Hello,
            Request::Ping => Opcode::Ping,
            Request::Reserve(_) => Opcode::Reserve,
            Request::ReserveBatch(_) => Opcode::ReserveBatch,
            Request::Confirm { .. } => Opcode::Confirm,
            Request::Release { .. } => Opcode::Release,
            Request::PayBalance { .. } => Opcode::PayBalance,
            Request::Ship { .. } => Opcode::Ship,
            Request::GetStock { .. } => Opcode::GetStock,
            Request::GetReservation { .. } => Opcode::GetReservation,
            Request::Subscribe(_) => Opcode::Subscribe,
            Request::ReplicaAck { .. } => Opcode::ReplicaAck,
            Request::Json { opcode, .. } => *opcode,
        }
    }

    /// Append this request as one frame. Refuses (writing nothing) what the protocol's fixed
    /// limits forbid: codes empty or over 64 bytes, keys over 128, batches over 1024, JSON bodies
    /// for binary opcodes. The server's configurable limits (`max_lines`, `max_frame_bytes`) are
    /// the caller's to check against its `hello_ok`.
    pub fn encode<B: Buffer>(&self, request_id: u64, out: &mut B) -> Result<usize, EncodeError> {
        let header = FrameHeader { opcode: self.opcode() as u16, flags: 0, request_id };
        write_frame(out, header, |w| self.encode_payload(w))
    }

    fn encode_payload<B: Buffer>(&self, w: &mut Writer<'_, B>) -> Result<(), EncodeError> {
        match self {
            Request::Hello(hello) => {
                w.raw(&hello.magic);
                w.u16(hello.version);
                w.u32(hello.features);
                w.str("api_key", hello.api_key, HELLO_STRING_LIMIT)?;
                w.str("client", hello.client, HELLO_STRING_LIMIT)
            }
            Request::Ping => Ok(()),
            Request::Reserve(reserve) => reserve.encode(w),
            Request::ReserveBatch(batch) => {
                if batch.is_empty() {
                    return Err(EncodeError::Empty { field: "reserve_batch" });
                }
                w.count("reserve_batch", batch.len(), MAX_BATCH as usize)?;
                for reserve in batch.iter() {
                    reserve.encode(w)?;
                }
                Ok(())
            }
            Request::Confirm { id }
            | Request::Release { id }
            | Request::PayBalance { id }
            | Request::Ship { id }
            | Request::GetReservation { id } => {
                w.u64(*id);
                Ok(())
            }
            Request::GetStock { sku } => sku.encode(w),
            Request::Subscribe(s) => {
                w.u64(s.from_lsn);
                w.opt_u32(s.partition);
                w.bool(s.bootstrap);
                Ok(())
            }
            Request::ReplicaAck { partition, durable_lsn } => {
                w.u32(*partition);
                w.u64(*durable_lsn);
                Ok(())
            }
            Request::Json { opcode, body } => {
                if opcode.body() != BodyKind::Json {
                    return Err(EncodeError::NotARequest(opcode.name()));
                }
                w.raw(body.as_bytes());
                Ok(())
            }
        }
    }
}

/// Decode a request payload in place. `header` is the frame's header (its opcode picks the
/// layout; request flags must be 0). Nothing is allocated.
#[inline]
pub fn decode_request<'a>(
    header: &FrameHeader,
    payload: &'a [u8],
    limits: &Limits,
) -> Result<Request<'a>, DecodeError> {
    let opcode = Opcode::from_u16(header.opcode).ok_or(DecodeError::UnknownOpcode(header.opcode))?;
    if header.flags != 0 {
        return Err(DecodeError::RequestFlags(header.flags));
    }
    let mut r = Reader::new(payload);
    let request = match opcode {
        Opcode::Reserve => Request::Reserve(decode_reserve(&mut r, limits)?),
        Opcode::Confirm => Request::Confirm { id: r.u64("id")? },
        Opcode::Release => Request::Release { id: r.u64("id")? },
        Opcode::PayBalance => Request::PayBalance { id: r.u64("id")? },
        Opcode::Ship => Request::Ship { id: r.u64("id")? },
        Opcode::GetReservation => Request::GetReservation { id: r.u64("id")? },
        Opcode::GetStock => Request::GetStock { sku: decode_sku(&mut r)? },
        Opcode::Ping => Request::Ping,
        Opcode::ReserveBatch => {
            let count = r.u16("reserve_batch")?;
            let limit = limits.max_batch.min(MAX_BATCH);
            if count == 0 {
                return Err(DecodeError::Empty { field: "reserve_batch" });
            }
            if u32::from(count) > limit {
                return Err(DecodeError::BatchTooLarge { count: usize::from(count), limit: limit as usize });
            }
            let start = r.rest();
            for _ in 0..count {
                decode_reserve(&mut r, limits)?;
            }
            let bytes = &start[..start.len() - r.remaining()];
            Request::ReserveBatch(Batch::Wire(WireBatch { bytes, count }))
        }
        Opcode::Hello => {
            let magic: [u8; 4] =
                r.slice("magic", 4)?.try_into().map_err(|_| DecodeError::Truncated { field: "magic" })?;
            let version = r.u16("version")?;
            let features = r.u32("features")?;
            let api_key = r.str("api_key", HELLO_STRING_LIMIT)?;
            let client = r.str("client", HELLO_STRING_LIMIT)?;
            Request::Hello(Hello { magic, version, features, api_key, client })
        }
        Opcode::Subscribe => {
            let from_lsn = r.u64("from_lsn")?;
            let partition = r.opt_u32("partition")?;
            let bootstrap = r.bool("bootstrap")?;
            Request::Subscribe(Subscribe { from_lsn, partition, bootstrap })
        }
        Opcode::ReplicaAck => {
            let partition = r.u32("partition")?;
            let durable_lsn = r.u64("durable_lsn")?;
            Request::ReplicaAck { partition, durable_lsn }
        }
        json => {
            debug_assert_eq!(json.body(), BodyKind::Json);
            let body = std::str::from_utf8(r.rest()).map_err(|_| DecodeError::InvalidUtf8 { field: "JSON body" })?;
            return Ok(Request::Json { opcode: json, body });
        }
    };
    r.finish()?;
    Ok(request)
}
