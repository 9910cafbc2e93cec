//! The order coordinator over [`ShardedEngine`]: the reference for what the gateway does across
//! partition threads. It reads orders from their partition, reserves stock through the ordinary
//! reservation path (a Reserve split per SKU partition, then Confirm), and records the result on
//! the order with `RecordAllocation`; short stock follows the routing rules (partial, next rule,
//! park, cancel later). Every step is a logged command, so replaying the journal reproduces it.

use std::collections::BTreeMap;

use super::intake::ChannelOrder;
use super::model::{OrderId, OrderStatus, SalesChannel};
use super::rules::Unfillable;
use super::{owner_of, OrderCommand, OrderEvent};
use crate::command::{Command, Envelope, Line, PartInfo, ReleaseCause, ReserveRequest};
use crate::error::EngineError;
use crate::event::{Allocation, Event};
use crate::ids::{ChannelId, CustomerId, ReservationId, SkuId, TimeMs};
use crate::sharded::ShardedEngine;

/// How long an order's hold lasts between Reserve and Confirm (they follow each other at once).
const ORDER_HOLD_TTL_MS: u64 = 60_000;

/// The sales channel id a marketplace's reservations use (so channel policies apply to them).
pub fn channel_id(channel: SalesChannel) -> ChannelId {
    ChannelId(match channel {
        SalesChannel::Native => 0,
        SalesChannel::Taobao => 1,
        SalesChannel::Jd => 2,
        SalesChannel::Douyin => 3,
    })
}

/// What an allocation attempt did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allocated {
    /// Everything open is now reserved, in `shipments` new shipments.
    Full { reservation: ReservationId, shipments: usize },
    /// Part of it is reserved; the rest waits in the unfillable queue.
    Partial { reservation: ReservationId, shipments: usize },
    /// Nothing could be reserved; the order waits in the unfillable queue.
    Parked,
    /// The order is not waiting for stock (on hold, cancelled, already allocated, a follower).
    NotWaiting,
}

/// Drives orders through a [`ShardedEngine`]. `next_sequence` numbers the reservations it makes.
pub struct Desk {
    pub next_sequence: u64,
    /// SKU code -> id, as the gateway's catalog index would answer.
    pub codes: BTreeMap<String, SkuId>,
}

impl Desk {
    /// A desk whose reservation sequences start above `first_sequence`.
    pub fn new(first_sequence: u64) -> Desk {
        Desk { next_sequence: first_sequence, codes: BTreeMap::new() }
    }

    /// Learn every SKU code the engine knows.
    pub fn learn_codes(&mut self, engine: &ShardedEngine) {
        for p in engine.partitions() {
            p.for_each_sku(|id, code, _| {
                self.codes.insert(code.to_owned(), id);
            });
        }
    }

    pub fn run(
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        command: Command,
        out: &mut Vec<Event>,
    ) -> Result<(), EngineError> {
        engine.apply(&Envelope { now_ms, command }, out)
    }

    pub fn order_command(
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        command: OrderCommand,
        out: &mut Vec<Event>,
    ) -> Result<(), EngineError> {
        engine.apply(&Envelope { now_ms, command: Command::Order(command) }, out)
    }

    /// Import a parsed channel order (SKU codes resolved with [`Desk::codes`]).
    pub fn import(
        &self,
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        order: &ChannelOrder,
        out: &mut Vec<Event>,
    ) -> Result<OrderId, ImportError> {
        let new = order.resolve(|code| self.codes.get(code).copied()).map_err(ImportError::Intake)?;
        let id = new.id;
        Desk::order_command(engine, now_ms, OrderCommand::Import(new), out).map_err(ImportError::Engine)?;
        Ok(id)
    }

    /// Allocate an approved order (or the open rest of a partially allocated one) following the
    /// routing rules.
    pub fn allocate(
        &mut self,
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        order: OrderId,
        out: &mut Vec<Event>,
    ) -> Result<Allocated, EngineError> {
        let p = owner_of(order, engine.partition_count()) as usize;
        let book = engine.partitions()[p].orders();
        let o = book.order(order).ok_or(EngineError::UnknownOrder { order })?;
        if !matches!(o.status, OrderStatus::Approved | OrderStatus::Allocated) || o.merged_into.is_some() {
            return Ok(Allocated::NotWaiting);
        }
        // Open units of the whole merge group, one line per SKU.
        let mut open: Vec<Line> = Vec::new();
        let mut codes: Vec<&str> = Vec::new();
        for member in std::iter::once(order).chain(o.merged.iter().copied()) {
            let Some(m) = book.order(member) else { continue };
            for l in &m.lines {
                codes.push(&l.sku_code);
                let qty = l.qty - l.allocated_qty;
                if qty == 0 {
                    continue;
                }
                match open.iter_mut().find(|x| x.sku == l.sku) {
                    Some(x) => x.qty += qty,
                    None => open.push(Line { sku: l.sku, qty }),
                }
            }
        }
        if open.is_empty() {
            return Ok(Allocated::NotWaiting);
        }
        let routing = book.routing_rules();
        let (province, city) = (&o.address.province, &o.address.city);
        let rules: Vec<_> = routing
            .matching(o.channel, province, city, &codes)
            .into_iter()
            .map(|rule| {
                let prefer = routing.preference(&rule, province, city, engine.partitions()[p].warehouses());
                (rule, prefer)
            })
            .collect();
        let (channel, customer, merged) = (channel_id(o.channel), CustomerId(order), !o.merged.is_empty());
        let already_parked = o.parked_since_ms.is_some();

        let mut last_rule = None;
        for (rule, prefer) in rules {
            match self.reserve(engine, now_ms, order, &open, channel, customer, prefer.clone(), out) {
                Ok(done) => return Ok(done),
                Err(e) if !is_shortage(&e) => return Err(e),
                Err(_) => {}
            }
            if rule.partial && !merged {
                let partial: Vec<Line> = open
                    .iter()
                    .filter_map(|l| {
                        let available = engine.available(l.sku).unwrap_or(0).min(u64::from(l.qty)) as u32;
                        (available > 0).then_some(Line { sku: l.sku, qty: available })
                    })
                    .collect();
                if !partial.is_empty() {
                    if let Ok(Allocated::Full { reservation, shipments }) =
                        self.reserve(engine, now_ms, order, &partial, channel, customer, prefer, out)
                    {
                        self.park(engine, now_ms, order, &rule, out)?;
                        return Ok(Allocated::Partial { reservation, shipments });
                    }
                }
            }
            if rule.on_unfillable != Unfillable::Next {
                last_rule = Some(rule);
                break;
            }
            last_rule = Some(rule);
        }
        if let Some(rule) = last_rule {
            if !(already_parked && rule.on_unfillable == Unfillable::Park) {
                self.park(engine, now_ms, order, &rule, out)?;
            }
        }
        Ok(Allocated::Parked)
    }

    fn park(
        &self,
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        order: OrderId,
        rule: &super::rules::RoutingRule,
        out: &mut Vec<Event>,
    ) -> Result<(), EngineError> {
        let cancel_at_ms =
            (rule.on_unfillable == Unfillable::Cancel).then(|| now_ms.saturating_add(rule.cancel_after_ms));
        let p = owner_of(order, engine.partition_count()) as usize;
        // Keep an existing deadline: a retry does not push it back.
        let existing = engine.partitions()[p].orders().order(order).and_then(|o| o.parked_cancel_at_ms);
        let cancel_at_ms = existing.or(cancel_at_ms);
        Desk::order_command(engine, now_ms, OrderCommand::Park { order, cancel_at_ms }, out)
    }

    /// Reserve and confirm `lines` for the order, then record the allocation. If the record is
    /// refused (the order changed meanwhile), the reservation is released again.
    #[allow(clippy::too_many_arguments)]
    fn reserve(
        &mut self,
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        order: OrderId,
        lines: &[Line],
        channel: ChannelId,
        customer: CustomerId,
        prefer_warehouses: Option<Vec<crate::ids::WarehouseId>>,
        out: &mut Vec<Event>,
    ) -> Result<Allocated, EngineError> {
        self.next_sequence += 1;
        // The partition bits are filled in by the router from the lines.
        let id = ReservationId(self.next_sequence & crate::routing::SEQUENCE_MASK);
        let request = ReserveRequest {
            id,
            lines: lines.to_vec(),
            ttl_ms: ORDER_HOLD_TTL_MS,
            idempotency_key: None,
            fingerprint: super::allocation_key(order, id),
            customer,
            channel,
            campaign: None,
            part: PartInfo::SINGLE,
            prefer_warehouses,
        };
        let mark = out.len();
        Desk::run(engine, now_ms, Command::Reserve(request), out)?;
        let mut reservation = None;
        let mut allocations: Vec<Allocation> = Vec::new();
        for e in &out[mark..] {
            if let Event::Reserved { id, allocations: a, .. } = e {
                reservation = Some(*id);
                allocations.extend(a.iter().copied());
            }
        }
        let reservation = reservation.expect("a successful reserve answers Reserved");
        Desk::run(engine, now_ms, Command::Confirm { id: reservation }, out)?;
        let record =
            OrderCommand::RecordAllocation { order, reservation, lines: lines.to_vec(), allocations, after_sale: None };
        if let Err(e) = Desk::order_command(engine, now_ms, record, out) {
            Desk::run(engine, now_ms, Command::Release { id: reservation, cause: ReleaseCause::Cancel }, out)?;
            return Err(e);
        }
        let shipments =
            out[mark..].iter().filter(|e| matches!(e, Event::Order(OrderEvent::ShipmentCreated { .. }))).count();
        Ok(Allocated::Full { reservation, shipments })
    }

    /// Allocate every approved order waiting for stock, oldest first, in every partition.
    pub fn allocate_all(
        &mut self,
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        out: &mut Vec<Event>,
    ) -> Result<Vec<(OrderId, Allocated)>, EngineError> {
        let waiting: Vec<OrderId> = engine.partitions().iter().flat_map(|p| p.orders().awaiting_allocation()).collect();
        let mut results = Vec::with_capacity(waiting.len());
        for order in waiting {
            let result = self.allocate(engine, now_ms, order, out)?;
            results.push((order, result));
        }
        Ok(results)
    }

    /// Retry the unfillable queue (call when stock arrives), oldest first.
    pub fn retry_parked(
        &mut self,
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        out: &mut Vec<Event>,
    ) -> Result<Vec<(OrderId, Allocated)>, EngineError> {
        let parked: Vec<OrderId> = engine.partitions().iter().flat_map(|p| p.orders().parked()).collect();
        let mut results = Vec::with_capacity(parked.len());
        for order in parked {
            let result = self.allocate(engine, now_ms, order, out)?;
            results.push((order, result));
        }
        Ok(results)
    }

    /// Reserve and record the replacement of an exchange whose goods came back.
    pub fn allocate_replacement(
        &mut self,
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        order: OrderId,
        after_sale: u64,
        lines: &[Line],
        out: &mut Vec<Event>,
    ) -> Result<ReservationId, EngineError> {
        let p = owner_of(order, engine.partition_count()) as usize;
        let o = engine.partitions()[p].orders().order(order).ok_or(EngineError::UnknownOrder { order })?;
        let channel = channel_id(o.channel);
        self.next_sequence += 1;
        let id = ReservationId(self.next_sequence & crate::routing::SEQUENCE_MASK);
        let request = ReserveRequest {
            id,
            lines: lines.to_vec(),
            ttl_ms: ORDER_HOLD_TTL_MS,
            idempotency_key: None,
            fingerprint: super::allocation_key(order, id),
            customer: CustomerId(order),
            channel,
            campaign: None,
            part: PartInfo::SINGLE,
            prefer_warehouses: None,
        };
        let mark = out.len();
        Desk::run(engine, now_ms, Command::Reserve(request), out)?;
        let (reservation, allocations) = out[mark..]
            .iter()
            .find_map(|e| match e {
                Event::Reserved { id, allocations, .. } => Some((*id, allocations.iter().copied().collect::<Vec<_>>())),
                _ => None,
            })
            .expect("a successful reserve answers Reserved");
        Desk::run(engine, now_ms, Command::Confirm { id: reservation }, out)?;
        let record = OrderCommand::RecordAllocation {
            order,
            reservation,
            lines: lines.to_vec(),
            allocations,
            after_sale: Some(after_sale),
        };
        if let Err(e) = Desk::order_command(engine, now_ms, record, out) {
            Desk::run(engine, now_ms, Command::Release { id: reservation, cause: ReleaseCause::Cancel }, out)?;
            return Err(e);
        }
        Ok(reservation)
    }
}

impl Desk {
    /// Create one pick wave per partition for `warehouse` (waves group the shipments of their own
    /// partition): wave ids `first * partitions + p`. Answers the waves created; partitions with
    /// nothing to pick are skipped.
    pub fn create_waves(
        engine: &mut ShardedEngine,
        now_ms: TimeMs,
        first: u64,
        warehouse: crate::ids::WarehouseId,
        carrier: Option<String>,
        max_shipments: u32,
        out: &mut Vec<Event>,
    ) -> Result<Vec<u64>, EngineError> {
        let partitions = u64::from(engine.partition_count());
        let mut created = Vec::new();
        for p in 0..partitions {
            let wave = first * partitions + p;
            let command =
                OrderCommand::CreateWave { wave, warehouse, carrier: carrier.clone(), max_shipments, cutoff_ms: None };
            match Desk::order_command(engine, now_ms, command, out) {
                Ok(()) => created.push(wave),
                Err(EngineError::NothingToWave { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if created.is_empty() {
            return Err(EngineError::NothingToWave { warehouse });
        }
        Ok(created)
    }
}

/// Refusals that mean "not enough stock now" (as opposed to a bad request).
pub fn is_shortage(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::InsufficientStock { .. }
            | EngineError::ChannelLimit { .. }
            | EngineError::InsufficientInWarehouse { .. }
    )
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Intake(super::intake::IntakeError),
    #[error("{0}")]
    Engine(EngineError),
}
