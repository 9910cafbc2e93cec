//! N partitions driven in one thread: the reference for the cross-partition protocol.
//!
//! The gateway runs the same protocol with one thread per partition; this version applies the
//! parts one after the other, which makes it deterministic and easy to test. Protocol for a
//! reservation whose lines live in several partitions ("reserve per partition, compensate"):
//! 1. expand kits, split the lines by owning partition (the id names those partitions);
//! 2. reserve each part in its partition, each all-or-nothing on its own lines;
//! 3. if any part is refused, release the parts that succeeded with `ReleaseCause::Compensation`
//!    and answer the refusal. The caller is answered only after every part has decided.
//!
//! With an idempotency key, its home partition (`routing::key_home`) decides first: its part (or,
//! when no line lives there, a `ClaimKey`) names the reservation the key stands for. A key seen
//! before with the same request continues under the first reservation's id (parts that exist
//! replay, parts a crash lost are made); with another request it is refused
//! `IdempotencyKeyReused` before anything else happens. Compensation undoes only the parts this
//! attempt made, and forgets the key (`ForgetKey`) if this attempt claimed it.
//!
//! Visible effects: between steps 2 and 3 a doomed part holds units, so a concurrent request may
//! be refused for stock that is about to come back (a false "insufficient", never an oversell).
//! If the process dies between 2 and 3, the orphaned part was never acknowledged and lapses at
//! its TTL like any unconfirmed hold.

use crate::command::{Command, Envelope, Line, ReleaseCause, ReserveRequest};
use crate::error::EngineError;
use crate::event::Event;
use crate::ids::{partition_of, SkuId};
use crate::partition::{Limits, Outcome, Partition, SkuStockView};
use crate::routing::{self, PartitionSet};

#[derive(Clone)]
pub struct ShardedEngine {
    partitions: Vec<Partition>,
    limits: Limits,
    /// Every (partition, command) that changed state, in order: what the logs would hold.
    journal: Option<Vec<(u32, Envelope)>>,
}

impl ShardedEngine {
    pub fn new(partitions: u32, limits: Limits) -> Self {
        assert!((1..=routing::MAX_PARTITIONS).contains(&partitions), "1..=16 partitions");
        ShardedEngine {
            partitions: (0..partitions).map(|i| Partition::new(i, partitions, limits)).collect(),
            limits,
            journal: None,
        }
    }

    /// Keep a journal of per-partition commands, for replay tests.
    pub fn with_journal(mut self) -> Self {
        self.journal = Some(Vec::new());
        self
    }

    pub fn journal(&self) -> &[(u32, Envelope)] {
        self.journal.as_deref().unwrap_or(&[])
    }

    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    fn owner(&self, sku: SkuId) -> usize {
        partition_of(sku, self.partition_count()) as usize
    }

    fn apply_to(
        &mut self,
        partition: usize,
        envelope: &Envelope,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let outcome = self.partitions[partition].apply(envelope, out)?;
        if outcome == Outcome::Changed {
            if let Some(journal) = &mut self.journal {
                journal.push((partition as u32, envelope.clone()));
            }
        }
        Ok(outcome)
    }

    /// Apply a command in one partition only, as one durable write (the gateway's `call`): no
    /// routing, no effects. Tests use it to stop between an order command and its stock commands,
    /// as a crash would; start-up reconciliation applies its commands this way.
    pub fn apply_in(
        &mut self,
        partition: u32,
        envelope: &Envelope,
        out: &mut Vec<Event>,
    ) -> Result<Outcome, EngineError> {
        let count = self.partition_count();
        if partition >= count {
            return Err(EngineError::WrongOrderPartition {
                order: u64::from(partition),
                owner: count,
                this: partition,
            });
        }
        self.apply_to(partition as usize, envelope, out)
    }

    /// Kit-expanded lines and the partitions they touch.
    pub fn plan_lines(&self, lines: &[Line]) -> Result<(Vec<Line>, PartitionSet), EngineError> {
        let expanded = routing::expand_kits(lines, self.limits.max_lines, |sku| {
            self.partitions[self.owner(sku)].kit_components(sku)
        })?;
        let set = routing::partitions_of(&expanded, self.partition_count());
        Ok((expanded, set))
    }

    pub fn apply(&mut self, envelope: &Envelope, out: &mut Vec<Event>) -> Result<(), EngineError> {
        let now_ms = envelope.now_ms;
        match &envelope.command {
            Command::Tick { .. } => {
                let mark = out.len();
                for p in 0..self.partitions.len() {
                    self.apply_to(p, envelope, out)?;
                }
                // A tick may cancel a parked order past its deadline: release what it held.
                self.apply_effects(now_ms, mark, out)
            }
            Command::DefineWarehouse { .. } | Command::SetChannelPolicy(_) | Command::NameWarehouse { .. } => {
                // Identical validation everywhere, so the first partition decides for all.
                for p in 0..self.partitions.len() {
                    self.apply_to(p, envelope, out)?;
                }
                Ok(())
            }
            Command::DefineKit { id, components, .. } => {
                crate::partition::validate_kit(*id, components, self.limits.max_lines)?;
                for c in components {
                    let owner = &self.partitions[self.owner(c.sku)];
                    if owner.available(c.sku).is_none() {
                        return Err(EngineError::UnknownSku { sku: c.sku });
                    }
                    if owner.kit_components(c.sku).is_some() {
                        return Err(EngineError::InvalidKit { kit: *id, reason: "kits of kits are not supported" });
                    }
                }
                self.apply_to(self.owner(*id), envelope, out).map(drop)
            }
            Command::Reserve(request) => self.reserve(now_ms, request, out),
            Command::ClaimKey { key, .. } | Command::ForgetKey { key, .. } => {
                let home = routing::key_home(key, self.partition_count());
                self.apply_to(home as usize, envelope, out).map(drop)
            }
            Command::Confirm { id }
            | Command::Release { id, .. }
            | Command::Ship { id }
            | Command::PayBalance { id } => {
                let parts = routing::reservation_parts(*id);
                if parts.is_empty() || parts.iter().any(|p| p >= self.partition_count()) {
                    return Err(EngineError::UnknownReservation { id: *id });
                }
                for p in parts.iter() {
                    self.apply_to(p as usize, envelope, out)?;
                }
                Ok(())
            }
            Command::DefineSku { id: sku, .. }
            | Command::SetOnHand { sku, .. }
            | Command::Receive { sku, .. }
            | Command::Adjust { sku, .. }
            | Command::SetBucket { sku, .. }
            | Command::Transfer { sku, .. }
            | Command::ReturnToStock { sku, .. }
            | Command::ExpectIncoming { sku, .. }
            | Command::RescheduleIncoming { sku, .. }
            | Command::ReceivePurchaseOrder { sku, .. }
            | Command::NameSku { sku, .. } => self.apply_to(self.owner(*sku), envelope, out).map(drop),
            Command::CreateFlashSale(spec) => self.apply_to(self.owner(spec.sku), envelope, out).map(drop),
            Command::CreatePresale(spec) => self.apply_to(self.owner(spec.sku), envelope, out).map(drop),
            Command::Order(order) => {
                // The owning partition (or every one, for rules) decides; then its effect events
                // become ordinary stock commands for the SKU partitions (release, ship, return).
                let mark = out.len();
                match order.partition(self.partition_count()) {
                    Some(p) => drop(self.apply_to(p as usize, envelope, out)?),
                    None => {
                        for p in 0..self.partitions.len() {
                            self.apply_to(p, envelope, out)?;
                        }
                    }
                }
                self.apply_effects(now_ms, mark, out)
            }
        }
    }

    /// Carry out the stock commands asked for by the order effect events in `out[mark..]`.
    fn apply_effects(&mut self, now_ms: u64, mark: usize, out: &mut Vec<Event>) -> Result<(), EngineError> {
        let effects =
            crate::orders::stock_commands(&out[mark..], |sku| self.partitions[self.owner(sku)].kit_components(sku));
        for command in effects {
            self.apply(&Envelope { now_ms, command }, out)?;
        }
        Ok(())
    }

    fn reserve(&mut self, now_ms: u64, request: &ReserveRequest, out: &mut Vec<Event>) -> Result<(), EngineError> {
        let (lines, set) = self.plan_lines(&request.lines)?;
        // Callers may leave the partition bits of the id empty; they are a function of the lines.
        let id = if routing::reservation_parts(request.id).is_empty() {
            routing::reservation_id(routing::reservation_sequence(request.id), set)
        } else {
            request.id
        };
        if routing::reservation_parts(id) != set {
            return Err(EngineError::UnknownReservation { id });
        }
        let campaign_partition = request
            .campaign
            .and_then(|c| self.partitions.iter().position(|p| p.campaign(c).is_some()).map(|p| p as u32));
        if let (Some(campaign), None) = (request.campaign, campaign_partition) {
            return Err(EngineError::UnknownCampaign { campaign });
        }
        if let (Some(campaign), Some(p)) = (request.campaign, campaign_partition) {
            if !set.contains(p) {
                // No line is in the campaign's partition, so none can be of its SKU: without this the
                // campaign would be dropped by the split and the lines sold from general stock.
                let expected = self.partitions[p as usize].campaign(campaign).map_or(lines[0].sku, |c| c.sku);
                return Err(EngineError::CampaignSkuMismatch { campaign, expected, found: lines[0].sku });
            }
        }
        let mut whole = ReserveRequest { id, lines, ..request.clone() };
        if whole.idempotency_key.is_some() {
            // What makes a retry "the same request" (the gateway computes it the same way).
            whole.fingerprint = routing::request_fingerprint(&whole);
        }
        let mut parts = routing::split_reserve(&whole, self.partition_count(), campaign_partition);
        let Some(key) = whole.idempotency_key.as_deref().cloned() else {
            return self.reserve_parts(now_ms, id, &parts, out).map(drop);
        };
        // The key's home decides first which reservation the key stands for.
        let home = routing::key_home(&key, self.partition_count());
        let mark = out.len();
        // (the reservation the key stands for, this attempt made the home part, ... claimed the key)
        let (first, home_made, claimed_now) = match parts.iter().position(|(p, _)| *p == home) {
            Some(i) => {
                let (p, part) = parts.remove(i);
                let envelope = Envelope { now_ms, command: Command::Reserve(part) };
                let outcome = self.apply_to(p as usize, &envelope, out)?;
                let first = out[mark..]
                    .iter()
                    .find_map(|e| if let Event::Reserved { id, .. } = e { Some(*id) } else { None })
                    .unwrap_or(id);
                let made = outcome == Outcome::Changed;
                (first, made, made && first == id)
            }
            None => {
                let claim =
                    Command::ClaimKey { key: key.clone(), fingerprint: whole.fingerprint, id, ttl_ms: whole.ttl_ms };
                self.apply_to(home as usize, &Envelope { now_ms, command: claim }, out)?;
                let claimed = out[mark..].iter().find_map(|e| match e {
                    Event::KeyClaimed { id, replayed } => Some((*id, !*replayed)),
                    _ => None,
                });
                let (first, claimed_now) = claimed.unwrap_or((id, false));
                (first, false, claimed_now)
            }
        };
        let parts: Vec<(u32, ReserveRequest)> =
            parts.into_iter().map(|(p, part)| (p, ReserveRequest { id: first, ..part })).collect();
        match self.reserve_parts(now_ms, first, &parts, out) {
            Ok(_) => Ok(()),
            Err(error) => {
                if home_made {
                    let undo =
                        Envelope { now_ms, command: Command::Release { id: first, cause: ReleaseCause::Compensation } };
                    let undone = self.apply_to(home as usize, &undo, out);
                    debug_assert!(undone.is_ok(), "compensation failed: {undone:?}");
                }
                if claimed_now {
                    // This attempt claimed the key: forget it, so a retry starts afresh.
                    let forget = Envelope { now_ms, command: Command::ForgetKey { key, id: first } };
                    let forgotten = self.apply_to(home as usize, &forget, out);
                    debug_assert!(forgotten.is_ok(), "forget failed: {forgotten:?}");
                }
                Err(error)
            }
        }
    }

    /// Reserve `parts` (all under reservation `id`) one after the other; if one is refused,
    /// release with `Compensation` those this call made (not those it only replayed) and answer
    /// the refusal. Answers the partitions whose part this call made.
    fn reserve_parts(
        &mut self,
        now_ms: u64,
        id: crate::ids::ReservationId,
        parts: &[(u32, ReserveRequest)],
        out: &mut Vec<Event>,
    ) -> Result<Vec<u32>, EngineError> {
        let mut made = Vec::with_capacity(parts.len());
        for (p, part) in parts {
            let envelope = Envelope { now_ms, command: Command::Reserve(part.clone()) };
            match self.apply_to(*p as usize, &envelope, out) {
                Ok(Outcome::Changed) => made.push(*p),
                Ok(Outcome::Unchanged) => {}
                Err(error) => {
                    for p in made {
                        let undo =
                            Envelope { now_ms, command: Command::Release { id, cause: ReleaseCause::Compensation } };
                        // Releasing a live part cannot fail.
                        let undone = self.apply_to(p as usize, &undo, out);
                        debug_assert!(undone.is_ok(), "compensation failed: {undone:?}");
                    }
                    return Err(error);
                }
            }
        }
        Ok(made)
    }

    pub fn stock(&self, sku: SkuId) -> Option<SkuStockView> {
        self.partitions[self.owner(sku)].stock(sku)
    }

    /// Sellable units; for a kit, the minimum over components of floor(available / qty).
    pub fn available(&self, sku: SkuId) -> Option<u64> {
        let owner = &self.partitions[self.owner(sku)];
        match owner.kit_components(sku) {
            Some(components) => components
                .iter()
                .map(|c| self.partitions[self.owner(c.sku)].available(c.sku).map(|a| a / u64::from(c.qty)))
                .try_fold(u64::MAX, |min, a| a.map(|a| min.min(a))),
            None => owner.available(sku),
        }
    }
}
