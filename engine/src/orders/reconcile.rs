//! Reconciliation: the stock commands the order books imply but the stock partitions may not have
//! carried out.
//!
//! An order command and the stock commands it triggers (release on cancel, ship on the last
//! shipment, restock on a received return) are separate durable writes, usually in different
//! partitions, so a crash between them leaves the stock side undone. Every such effect leaves a
//! trace in the order book, and every stock command it needs is safe to repeat, so the effects can
//! be recomputed from state after recovery instead of being logged twice:
//!
//! - a cancelled order whose reservation is still live in a partition: `Release` there;
//! - a reservation all of whose shipments left, still live in a partition: `Ship` there;
//! - a received return or exchange line without a restock marker in its SKU's partition:
//!   `Restock` (remembered per after-sales line, so a repeat changes nothing);
//! - with `orphans`, a live reservation that an allocation made (customer = an order id of the
//!   same channel, in that order's partition, and the idempotency key `allocation_key` of that
//!   order and reservation) but no shipment records: the crash came between
//!   Reserve/Confirm and `RecordAllocation`, so it is released. Only safe when no allocation is in
//!   flight, i.e. at start-up before serving.
//!
//! A pure function of the partitions: the caller applies each command in the partition named, as
//! one ordinary logged command (replay then needs no reconciliation of its own).

use std::collections::BTreeSet;

use super::desk::channel_id;
use super::model::{AfterSaleKind, AfterSaleStatus, OrderStatus, ShipmentStatus};
use super::{owner_of, restock_commands};
use crate::command::{Command, ReleaseCause};
use crate::error::EngineError;
use crate::ids::{partition_of, ReservationId};
use crate::partition::Partition;
use crate::routing;

/// The stock commands owed, each with the partition to apply it in, in a deterministic order.
pub fn owed_stock_commands(partitions: &[&Partition], orphans: bool) -> Vec<(u32, Command)> {
    let count = partitions.len() as u32;
    let mut owed: Vec<(u32, Command)> = Vec::new();
    let live_parts = |id: ReservationId| {
        routing::reservation_parts(id)
            .iter()
            .filter(|p| partitions.get(*p as usize).is_some_and(|partition| partition.is_live(id)))
            .collect::<Vec<u32>>()
    };
    let mut recorded: BTreeSet<ReservationId> = BTreeSet::new();
    for partition in partitions {
        let mut orders: Vec<_> = partition.orders().orders().collect();
        orders.sort_unstable_by_key(|o| o.id);
        for order in orders {
            let mut reservations: Vec<ReservationId> = order.shipments.iter().map(|s| s.reservation).collect();
            reservations.sort_unstable();
            reservations.dedup();
            recorded.extend(reservations.iter().copied());
            for id in reservations {
                let shipments = || order.shipments.iter().filter(|s| s.reservation == id);
                let release = order.status == OrderStatus::Cancelled;
                let ship = !release
                    && shipments().all(|s| matches!(s.status, ShipmentStatus::Shipped | ShipmentStatus::Delivered));
                if !(release || ship) {
                    continue;
                }
                for p in live_parts(id) {
                    let command = if release {
                        Command::Release { id, cause: ReleaseCause::Cancel }
                    } else {
                        Command::Ship { id }
                    };
                    owed.push((p, command));
                }
            }
            for request in &order.after_sales {
                let received = request.kind != AfterSaleKind::Refund && request.status != AfterSaleStatus::Requested;
                if !received {
                    continue;
                }
                for line in &request.lines {
                    let Some(warehouse) = super::fulfilment::return_warehouse(order, line.sku) else { continue };
                    let owner = &partitions[partition_of(line.sku, count) as usize];
                    let commands = restock_commands(
                        request.id,
                        line.sku,
                        warehouse,
                        line.qty,
                        request.damaged,
                        owner.kit_components(line.sku),
                    );
                    for command in commands {
                        let Command::Order(super::OrderCommand::Restock { line_sku, sku, .. }) = &command else {
                            continue;
                        };
                        let p = partition_of(*sku, count);
                        let done = partitions
                            .get(p as usize)
                            .is_none_or(|s| s.orders().restocked(request.id, *line_sku, *sku));
                        if !done {
                            owed.push((p, command));
                        }
                    }
                }
            }
        }
    }
    if orphans {
        for partition in partitions {
            let mut live: Vec<_> = partition.live_reservation_owners().collect();
            live.sort_unstable_by_key(|(id, _, _, _)| *id);
            for (id, customer, channel, key) in live {
                // Only a reservation carrying its order's allocation key is an allocation's: a
                // storefront customer id may well equal some order id.
                if recorded.contains(&id) || key != super::allocation_key(customer.0, id) {
                    continue;
                }
                let order = customer.0;
                let Some(o) = partitions.get(owner_of(order, count) as usize).and_then(|p| p.orders().order(order))
                else {
                    continue;
                };
                if channel_id(o.channel) == channel {
                    owed.push((partition.index(), Command::Release { id, cause: ReleaseCause::Cancel }));
                }
            }
        }
    }
    owed
}

/// Refusals of a repeated stock effect that mean it was carried out before (the reservation
/// already ended, or never reached this partition): treat as done.
pub fn already_done(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::UnknownReservation { .. }
            | EngineError::ReservationExpired { .. }
            | EngineError::InvalidReservationState { state: "released" | "shipped", .. }
    )
}
