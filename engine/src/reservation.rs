//! Live reservations, their expiry order, idempotency keys, and recently ended reservations.

use std::collections::{BTreeSet, VecDeque};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::event::{Allocation, ReleaseReason};
use crate::ids::{CampaignId, ChannelId, CustomerId, ReservationId, TimeMs};

/// Lifecycle of a reservation while it is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Checkout hold: expires at `expires_at_ms` unless confirmed.
    Held,
    /// Paid: held for fulfilment until shipped or cancelled; never expires.
    Confirmed,
    /// Presale deposit paid: released if the balance is not paid by `expires_at_ms`.
    DepositHeld,
    /// Presale balance paid: waits for its units (if still outstanding) and then shipment.
    BalancePaid,
}

impl HoldState {
    pub fn name(self) -> &'static str {
        match self {
            HoldState::Held => "held",
            HoldState::Confirmed => "confirmed",
            HoldState::DepositHeld => "deposit_held",
            HoldState::BalancePaid => "balance_paid",
        }
    }

    pub fn expires(self) -> bool {
        matches!(self, HoldState::Held | HoldState::DepositHeld)
    }
}

/// The allocations of a reservation; one line (the common case at checkout) is stored inline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Allocations {
    None,
    One(Allocation),
    Many(Box<[Allocation]>),
}

impl Allocations {
    pub fn from_slice(allocations: &[Allocation]) -> Self {
        match allocations {
            [] => Allocations::None,
            [one] => Allocations::One(*one),
            many => Allocations::Many(many.into()),
        }
    }

    pub fn as_slice(&self) -> &[Allocation] {
        match self {
            Allocations::None => &[],
            Allocations::One(one) => std::slice::from_ref(one),
            Allocations::Many(many) => many,
        }
    }

    pub fn push(&mut self, allocation: Allocation) {
        let mut all = self.as_slice().to_vec();
        if let Some(existing) = all
            .iter_mut()
            .find(|a| a.sku == allocation.sku && a.warehouse == allocation.warehouse)
        {
            existing.qty += allocation.qty;
        } else {
            all.push(allocation);
        }
        *self = Allocations::from_slice(&all);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub customer: CustomerId,
    pub channel: ChannelId,
    pub campaign: Option<CampaignId>,
    pub state: HoldState,
    pub parts: u16,
    pub created_at_ms: TimeMs,
    /// When the hold lapses (checkout TTL, or a presale balance deadline).
    pub expires_at_ms: TimeMs,
    pub idempotency_key: u64,
    /// Units held in stock cells.
    pub allocations: Allocations,
    /// Presale only: units still waiting for a purchase order, and when they are promised.
    pub presale: Option<Box<PresaleHold>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct PresaleHold {
    pub qty: u32,
    pub outstanding: u32,
    pub promise_ms: Option<TimeMs>,
}

impl Reservation {
    pub fn total_units(&self) -> u64 {
        let held: u64 = self.allocations.as_slice().iter().map(|a| u64::from(a.qty)).sum();
        held + self.presale.as_ref().map_or(0, |p| u64::from(p.outstanding))
    }
}

/// How a reservation ended; kept for a while so retries and late confirms get a precise answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Released(ReleaseReason),
    Shipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Ended {
    pub reservation: Reservation,
    pub ending: Ending,
    pub at_ms: TimeMs,
}

/// Counters for the post-run audit: every accepted reservation ends up in exactly one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ReservationCounters {
    pub accepted: u64,
    pub confirmed: u64,
    pub released: u64,
    pub expired: u64,
    pub shipped: u64,
    pub compensated: u64,
}

/// All reservations of one partition.
#[derive(Clone, Debug, Default)]
pub struct ReservationBook {
    pub live: FxHashMap<ReservationId, Reservation>,
    /// (expires_at_ms, id) of every live reservation whose state expires.
    pub expiry: BTreeSet<(TimeMs, ReservationId)>,
    /// Idempotency key -> reservation, for live and recently ended reservations.
    pub keys: FxHashMap<u64, ReservationId>,
    pub ended: FxHashMap<ReservationId, Ended>,
    /// Ended reservations in the order they ended, so the oldest is forgotten first.
    pub ended_order: VecDeque<ReservationId>,
    pub counters: ReservationCounters,
}

impl ReservationBook {
    pub fn insert(&mut self, reservation: Reservation) {
        debug_assert!(!self.live.contains_key(&reservation.id));
        if reservation.state.expires() {
            self.expiry.insert((reservation.expires_at_ms, reservation.id));
        }
        if reservation.idempotency_key != 0 {
            self.keys.insert(reservation.idempotency_key, reservation.id);
        }
        self.live.insert(reservation.id, reservation);
    }

    /// Change the state (and deadline) of a live reservation, keeping the expiry index in step.
    pub fn set_state(&mut self, id: ReservationId, state: HoldState, expires_at_ms: TimeMs) {
        let Some(reservation) = self.live.get_mut(&id) else {
            debug_assert!(false, "set_state on a reservation that is not live");
            return;
        };
        if reservation.state.expires() {
            self.expiry.remove(&(reservation.expires_at_ms, id));
        }
        reservation.state = state;
        reservation.expires_at_ms = expires_at_ms;
        if state.expires() {
            self.expiry.insert((expires_at_ms, id));
        }
    }

    /// Take a reservation out of the live set (the caller returns its units).
    pub fn remove_live(&mut self, id: ReservationId) -> Option<Reservation> {
        let reservation = self.live.remove(&id)?;
        if reservation.state.expires() {
            self.expiry.remove(&(reservation.expires_at_ms, id));
        }
        Some(reservation)
    }

    /// Remember how a reservation ended, forgetting the oldest beyond `limit`.
    pub fn record_ended(&mut self, reservation: Reservation, ending: Ending, at_ms: TimeMs, limit: usize) {
        let id = reservation.id;
        if ending == Ending::Released(ReleaseReason::Compensation) {
            // A compensated part never answered the caller, so its key must not answer a retry.
            if reservation.idempotency_key != 0 {
                self.keys.remove(&reservation.idempotency_key);
            }
            return;
        }
        self.ended.insert(id, Ended { reservation, ending, at_ms });
        self.ended_order.push_back(id);
        while self.ended_order.len() > limit {
            let Some(oldest) = self.ended_order.pop_front() else { break };
            if let Some(gone) = self.ended.remove(&oldest) {
                if gone.reservation.idempotency_key != 0 {
                    self.keys.remove(&gone.reservation.idempotency_key);
                }
            }
        }
    }

    /// The first live reservation that is due at `now_ms`, if any.
    pub fn next_due(&self, now_ms: TimeMs) -> Option<ReservationId> {
        self.expiry
            .first()
            .filter(|(at, _)| *at <= now_ms)
            .map(|(_, id)| *id)
    }
}
