//! Live reservations, their expiry order, idempotency keys, and recently ended reservations.

use std::collections::{BTreeMap, VecDeque};

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
#[derive(Clone, Debug, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Allocations {
    #[default]
    None,
    One(Allocation),
    Many(Box<[Allocation]>),
}

impl std::ops::Deref for Allocations {
    type Target = [Allocation];
    fn deref(&self) -> &[Allocation] {
        self.as_slice()
    }
}

impl<'a> IntoIterator for &'a Allocations {
    type Item = &'a Allocation;
    type IntoIter = std::slice::Iter<'a, Allocation>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl PartialEq<Vec<Allocation>> for Allocations {
    fn eq(&self, other: &Vec<Allocation>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl From<Vec<Allocation>> for Allocations {
    fn from(all: Vec<Allocation>) -> Self {
        Allocations::from_slice(&all)
    }
}

impl Serialize for Allocations {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for Allocations {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Allocation>::deserialize(deserializer).map(Allocations::from)
    }
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
        if let Some(existing) = all.iter_mut().find(|a| a.sku == allocation.sku && a.warehouse == allocation.warehouse)
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
    /// Milliseconds between creation and the first deadline (creation time without storing a
    /// second u64: this struct is what a live reservation costs).
    pub hold_ms: u32,
    /// When the hold lapses (checkout TTL, or a presale balance deadline).
    pub expires_at_ms: TimeMs,
    /// `ReserveRequest::fingerprint` of the request that made it (0 for none): a part sent again
    /// under this id replays it only if the fingerprint matches; order allocations carry their
    /// `allocation_key` here.
    pub fingerprint: u64,
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
    pub fn created_at_ms(&self) -> TimeMs {
        self.expires_at_ms.saturating_sub(u64::from(self.hold_ms))
    }

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
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct ReservationCounters {
    pub accepted: u64,
    pub confirmed: u64,
    pub released: u64,
    pub expired: u64,
    pub shipped: u64,
    pub compensated: u64,
}

/// Live reservations stored densely: a slab of values plus an id -> slot index.
///
/// A hash map of full values would round its capacity up to a power of two and keep half its
/// slots empty at times; with the values in a `Vec` only the small index pays that, which is
/// what keeps a live reservation near 128 bytes.
#[derive(Clone, Debug, Default)]
pub struct LiveSet {
    slots: Vec<Reservation>,
    index: FxHashMap<ReservationId, u32>,
}

impl LiveSet {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn contains_key(&self, id: &ReservationId) -> bool {
        self.index.contains_key(id)
    }

    pub fn get(&self, id: &ReservationId) -> Option<&Reservation> {
        self.index.get(id).map(|&slot| &self.slots[slot as usize])
    }

    pub fn get_mut(&mut self, id: &ReservationId) -> Option<&mut Reservation> {
        self.index.get(id).map(|&slot| &mut self.slots[slot as usize])
    }

    pub fn insert(&mut self, reservation: Reservation) {
        debug_assert!(self.slots.len() < u32::MAX as usize);
        // One hash lookup: the entry either names the slot to overwrite or takes the next one.
        match self.index.entry(reservation.id) {
            std::collections::hash_map::Entry::Occupied(slot) => self.slots[*slot.get() as usize] = reservation,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.slots.len() as u32);
                self.slots.push(reservation);
            }
        }
    }

    pub fn remove(&mut self, id: &ReservationId) -> Option<Reservation> {
        let slot = self.index.remove(id)? as usize;
        let removed = self.slots.swap_remove(slot);
        if let Some(moved) = self.slots.get(slot) {
            self.index.insert(moved.id, slot as u32);
        }
        Some(removed)
    }

    pub fn values(&self) -> impl Iterator<Item = &Reservation> {
        self.slots.iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = &ReservationId> {
        self.slots.iter().map(|r| &r.id)
    }
}

/// All reservations of one partition.
#[derive(Clone, Debug, Default)]
pub struct ReservationBook {
    pub live: LiveSet,
    /// Deadline bucket (`expires_at_ms / EXPIRY_BUCKET_MS`) -> ids, for every live reservation whose
    /// state expires. Entries are removed lazily (a confirmed or released reservation leaves a
    /// stale id behind until its bucket is swept), which keeps an entry at 8 bytes.
    pub expiry: BTreeMap<u64, Vec<ReservationId>>,
    /// The idempotency keys this partition is home to (`routing::key_home`).
    pub claims: crate::keys::KeyClaims,
    pub ended: FxHashMap<ReservationId, Ended>,
    /// Ended reservations in the order they ended, so the oldest is forgotten first.
    pub ended_order: VecDeque<ReservationId>,
    pub counters: ReservationCounters,
}

/// Width of one expiry bucket.
pub const EXPIRY_BUCKET_MS: u64 = 8;

impl ReservationBook {
    fn schedule(&mut self, expires_at_ms: TimeMs, id: ReservationId) {
        self.expiry.entry(expires_at_ms / EXPIRY_BUCKET_MS).or_default().push(id);
    }

    pub fn insert(&mut self, reservation: Reservation) {
        debug_assert!(!self.live.contains_key(&reservation.id));
        if reservation.state.expires() {
            self.schedule(reservation.expires_at_ms, reservation.id);
        }
        self.live.insert(reservation);
    }

    /// Change the state (and deadline) of a live reservation, keeping the expiry index in step.
    pub fn set_state(&mut self, id: ReservationId, state: HoldState, expires_at_ms: TimeMs) {
        let Some(reservation) = self.live.get_mut(&id) else {
            debug_assert!(false, "set_state on a reservation that is not live");
            return;
        };
        let was_scheduled = reservation.state.expires() && reservation.expires_at_ms == expires_at_ms;
        reservation.state = state;
        reservation.expires_at_ms = expires_at_ms;
        if state.expires() && !was_scheduled {
            self.schedule(expires_at_ms, id);
        }
    }

    /// Take a reservation out of the live set (the caller returns its units).
    pub fn remove_live(&mut self, id: ReservationId) -> Option<Reservation> {
        // Its expiry entry, if any, goes stale and is dropped when its bucket is swept.
        self.live.remove(&id)
    }

    /// Remember how a reservation ended, forgetting the oldest beyond `limit`.
    pub fn record_ended(&mut self, reservation: Reservation, ending: Ending, at_ms: TimeMs, limit: usize) {
        let id = reservation.id;
        if ending == Ending::Released(ReleaseReason::Compensation) {
            // A compensated part never answered the caller: a retry may make it again under the
            // same id, so it is not remembered as ended.
            return;
        }
        self.ended.insert(id, Ended { reservation, ending, at_ms });
        self.ended_order.push_back(id);
        while self.ended_order.len() > limit {
            let Some(oldest) = self.ended_order.pop_front() else {
                break;
            };
            self.ended.remove(&oldest);
        }
    }

    /// Up to `budget` live reservations due at `now_ms`, in (deadline, id) order: the same order
    /// whatever the history of the index, so a partition restored from a snapshot expires
    /// exactly like the original.
    pub fn take_due(&mut self, now_ms: TimeMs, budget: usize) -> Vec<ReservationId> {
        let mut taken = Vec::new();
        while taken.len() < budget {
            let Some(mut entry) = self.expiry.first_entry() else {
                break;
            };
            let bucket = *entry.key();
            if bucket.saturating_mul(EXPIRY_BUCKET_MS) > now_ms {
                break;
            }
            let live = &self.live;
            let mut due: Vec<(TimeMs, ReservationId)> = Vec::new();
            entry.get_mut().retain(|id| match live.get(id) {
                Some(r) if r.state.expires() && r.expires_at_ms / EXPIRY_BUCKET_MS == bucket => {
                    if r.expires_at_ms <= now_ms {
                        due.push((r.expires_at_ms, *id));
                        false
                    } else {
                        true
                    }
                }
                _ => false,
            });
            due.sort_unstable();
            due.dedup();
            let room = budget - taken.len();
            if due.len() > room {
                entry.get_mut().extend(due.drain(room..).map(|(_, id)| id));
            }
            taken.extend(due.into_iter().map(|(_, id)| id));
            if entry.get().is_empty() {
                entry.remove();
            } else {
                // What is left in this bucket is not due yet, or over the budget.
                break;
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_set_keeps_its_index_consistent_through_swap_removal() {
        let mut set = LiveSet::default();
        let make = |id: u64| Reservation {
            id: ReservationId(id),
            customer: CustomerId(id),
            channel: ChannelId(0),
            campaign: None,
            state: HoldState::Held,
            hold_ms: 10,
            expires_at_ms: 10,
            fingerprint: 0,
            allocations: Allocations::None,
            presale: None,
        };
        for id in 1..=5 {
            set.insert(make(id));
        }
        assert_eq!(set.remove(&ReservationId(2)).map(|r| r.id), Some(ReservationId(2)));
        assert_eq!(set.remove(&ReservationId(2)), None);
        for id in [1, 3, 4, 5] {
            assert_eq!(set.get(&ReservationId(id)).map(|r| r.customer), Some(CustomerId(id)));
        }
        assert_eq!(set.len(), 4);
        assert!(
            std::mem::size_of::<Reservation>() <= 80,
            "Reservation grew to {} bytes",
            std::mem::size_of::<Reservation>()
        );
    }
}
