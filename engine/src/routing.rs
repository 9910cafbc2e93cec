//! Pure routing rules shared by the in-process [`crate::sharded::ShardedEngine`] and the gateway:
//! line validation, kit expansion, splitting a reservation by partition, and reservation ids that
//! name the partitions holding their parts.
//!
//! Reservation id layout: `[ partition mask: 16 bits | sequence: 48 bits ]`. The mask lets confirm,
//! release and ship reach exactly the partitions that hold a part, with no directory to keep.

use crate::command::{IdempotencyKey, KitComponent, Line, PartInfo, ReserveRequest};
use crate::error::EngineError;
use crate::ids::{partition_of, stable_hash, ReservationId, SkuId};

/// The most partitions a deployment may run (one bit each in a reservation id).
pub const MAX_PARTITIONS: u32 = 16;
const SEQUENCE_BITS: u32 = 48;
pub const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;

/// A set of partitions, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionSet(pub u16);

impl PartitionSet {
    pub fn contains(self, partition: u32) -> bool {
        partition < MAX_PARTITIONS && self.0 & (1 << partition) != 0
    }

    pub fn insert(&mut self, partition: u32) {
        debug_assert!(partition < MAX_PARTITIONS);
        self.0 |= 1 << (partition % MAX_PARTITIONS);
    }

    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..MAX_PARTITIONS).filter(move |p| self.contains(*p))
    }
}

pub fn reservation_id(sequence: u64, parts: PartitionSet) -> ReservationId {
    debug_assert!(!parts.is_empty());
    ReservationId((u64::from(parts.0) << SEQUENCE_BITS) | (sequence & SEQUENCE_MASK))
}

pub fn reservation_parts(id: ReservationId) -> PartitionSet {
    PartitionSet((id.0 >> SEQUENCE_BITS) as u16)
}

pub fn reservation_sequence(id: ReservationId) -> u64 {
    id.0 & SEQUENCE_MASK
}

/// The partition that remembers an idempotency key (whatever partitions the request's lines live
/// in), so a key reused for a different cart is caught wherever that cart's lines live.
pub fn key_home(key: &IdempotencyKey, partitions: u32) -> u32 {
    let mut bytes = Vec::with_capacity(key.scope.len() + key.key.len() + 4);
    bytes.extend_from_slice(&(key.scope.len() as u32).to_le_bytes());
    bytes.extend_from_slice(key.scope.as_bytes());
    bytes.extend_from_slice(key.key.as_bytes());
    (stable_hash(&bytes) % u64::from(partitions.max(1))) as u32
}

/// What makes two keyed requests "the same request": the kit-expanded lines (in SKU order), TTL,
/// customer, channel, campaign and preferred warehouses, hashed (never 0). Computed once for the
/// whole request, before it is split, and carried by every part. A collision can only make one
/// caller's own two requests under one key look alike (it then gets the first one's answer).
pub fn request_fingerprint(request: &ReserveRequest) -> u64 {
    let mut lines: Vec<Line> = request.lines.clone();
    lines.sort_unstable_by_key(|l| l.sku);
    let mut bytes = Vec::with_capacity(64 + 8 * lines.len());
    bytes.extend_from_slice(b"oms-request");
    for line in &lines {
        bytes.extend_from_slice(&line.sku.0.to_le_bytes());
        bytes.extend_from_slice(&line.qty.to_le_bytes());
    }
    bytes.push(0xff);
    bytes.extend_from_slice(&request.ttl_ms.to_le_bytes());
    bytes.extend_from_slice(&request.customer.0.to_le_bytes());
    bytes.extend_from_slice(&request.channel.0.to_le_bytes());
    match request.campaign {
        Some(c) => {
            bytes.push(1);
            bytes.extend_from_slice(&c.0.to_le_bytes());
        }
        None => bytes.push(0),
    }
    for w in request.prefer_warehouses.iter().flatten() {
        bytes.extend_from_slice(&w.0.to_le_bytes());
    }
    stable_hash(&bytes)
}

/// Lines must be present, bounded, positive and name each SKU once.
pub fn validate_lines(lines: &[Line], max_lines: usize) -> Result<(), EngineError> {
    if lines.is_empty() {
        return Err(EngineError::NoLines);
    }
    if lines.len() > max_lines {
        return Err(EngineError::TooManyLines { lines: lines.len(), limit: max_lines });
    }
    for (i, line) in lines.iter().enumerate() {
        if line.qty == 0 {
            return Err(EngineError::ZeroQuantity { line: i });
        }
        if lines[..i].iter().any(|l| l.sku == line.sku) {
            return Err(EngineError::DuplicateLine { sku: line.sku });
        }
    }
    Ok(())
}

/// Replace kit lines by their components (kits of kits are refused at definition), summing a
/// component that appears several times. `kit_of` answers a SKU's components if it is a kit.
pub fn expand_kits<'a>(
    lines: &[Line],
    max_lines: usize,
    mut kit_of: impl FnMut(SkuId) -> Option<&'a [KitComponent]>,
) -> Result<Vec<Line>, EngineError> {
    validate_lines(lines, max_lines)?;
    let mut expanded: Vec<Line> = Vec::with_capacity(lines.len());
    let mut add = |sku: SkuId, qty: u64| -> Result<(), EngineError> {
        let qty = u32::try_from(qty).map_err(|_| EngineError::TooManyLines { lines: usize::MAX, limit: max_lines })?;
        match expanded.iter_mut().find(|l| l.sku == sku) {
            Some(existing) => {
                existing.qty = existing
                    .qty
                    .checked_add(qty)
                    .ok_or(EngineError::TooManyLines { lines: usize::MAX, limit: max_lines })?;
            }
            None => expanded.push(Line { sku, qty }),
        }
        Ok(())
    };
    for line in lines {
        match kit_of(line.sku) {
            Some(components) => {
                for c in components {
                    add(c.sku, u64::from(c.qty) * u64::from(line.qty))?;
                }
            }
            None => add(line.sku, u64::from(line.qty))?,
        }
    }
    if expanded.len() > max_lines {
        return Err(EngineError::TooManyLines { lines: expanded.len(), limit: max_lines });
    }
    Ok(expanded)
}

/// The partitions a set of lines touches.
pub fn partitions_of(lines: &[Line], partitions: u32) -> PartitionSet {
    let mut set = PartitionSet::default();
    for line in lines {
        set.insert(partition_of(line.sku, partitions));
    }
    set
}

/// Split a validated, kit-expanded request into one request per partition, in partition order.
/// The campaign goes only to the part that owns the campaign's SKU.
pub fn split_reserve(
    request: &ReserveRequest,
    partitions: u32,
    campaign_partition: Option<u32>,
) -> Vec<(u32, ReserveRequest)> {
    let set = partitions_of(&request.lines, partitions);
    let parts = set.len() as u16;
    set.iter()
        .map(|p| {
            let lines = request.lines.iter().copied().filter(|l| partition_of(l.sku, partitions) == p).collect();
            let campaign = if campaign_partition == Some(p) { request.campaign } else { None };
            (p, ReserveRequest { lines, campaign, part: PartInfo { parts }, ..request.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_ids_carry_their_partitions() {
        let mut set = PartitionSet::default();
        set.insert(0);
        set.insert(3);
        let id = reservation_id(42, set);
        assert_eq!(reservation_parts(id), set);
        assert_eq!(reservation_sequence(id), 42);
        assert_eq!(reservation_parts(id).iter().collect::<Vec<_>>(), vec![0, 3]);
    }

    #[test]
    fn kits_expand_into_summed_components() {
        let kit = [KitComponent { sku: SkuId(1), qty: 2 }, KitComponent { sku: SkuId(2), qty: 1 }];
        let lines = [Line { sku: SkuId(9), qty: 3 }, Line { sku: SkuId(1), qty: 1 }];
        let expanded = expand_kits(&lines, 64, |sku| (sku == SkuId(9)).then_some(&kit[..])).unwrap();
        assert_eq!(expanded, vec![Line { sku: SkuId(1), qty: 7 }, Line { sku: SkuId(2), qty: 3 }]);
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        assert_eq!(validate_lines(&[], 4), Err(EngineError::NoLines));
        assert_eq!(validate_lines(&[Line { sku: SkuId(1), qty: 0 }], 4), Err(EngineError::ZeroQuantity { line: 0 }));
        let dup = [Line { sku: SkuId(1), qty: 1 }, Line { sku: SkuId(1), qty: 2 }];
        assert_eq!(validate_lines(&dup, 4), Err(EngineError::DuplicateLine { sku: SkuId(1) }));
        let many = [Line { sku: SkuId(1), qty: 1 }, Line { sku: SkuId(2), qty: 1 }];
        assert_eq!(validate_lines(&many, 1), Err(EngineError::TooManyLines { lines: 2, limit: 1 }));
    }

    #[test]
    fn fingerprints_tell_requests_apart_and_ignore_line_order() {
        // Checks that the fingerprint is the same for the same cart in another line order, and
        // differs when a quantity, the customer or the TTL differs; and that a key's home depends
        // on its scope too.
        let request = |lines: Vec<Line>, customer: u64, ttl_ms: u64| ReserveRequest {
            id: ReservationId(1),
            lines,
            ttl_ms,
            idempotency_key: None,
            fingerprint: 0,
            customer: crate::ids::CustomerId(customer),
            channel: crate::ids::ChannelId(0),
            campaign: None,
            part: PartInfo::SINGLE,
            prefer_warehouses: None,
        };
        let (a, b) = (Line { sku: SkuId(1), qty: 2 }, Line { sku: SkuId(2), qty: 1 });
        let base = request_fingerprint(&request(vec![a, b], 7, 1000));
        assert_eq!(base, request_fingerprint(&request(vec![b, a], 7, 1000)));
        assert_ne!(base, request_fingerprint(&request(vec![a, Line { sku: SkuId(2), qty: 5 }], 7, 1000)));
        assert_ne!(base, request_fingerprint(&request(vec![a, b], 8, 1000)));
        assert_ne!(base, request_fingerprint(&request(vec![a, b], 7, 2000)));
        assert_ne!(base, 0);
        let homes: std::collections::HashSet<u32> = (0..64)
            .map(|i| key_home(&IdempotencyKey { scope: format!("shop-{i}"), key: "order-1".into() }, 16))
            .collect();
        assert!(homes.len() > 4, "the scope takes part in the home: {homes:?}");
    }

    #[test]
    fn split_sends_the_campaign_to_its_owner_only() {
        let request = ReserveRequest {
            id: ReservationId(1),
            lines: vec![Line { sku: SkuId(0), qty: 1 }, Line { sku: SkuId(1), qty: 1 }, Line { sku: SkuId(2), qty: 1 }],
            ttl_ms: 1000,
            idempotency_key: None,
            fingerprint: 0,
            customer: crate::ids::CustomerId(1),
            channel: crate::ids::ChannelId(0),
            campaign: Some(crate::ids::CampaignId(5)),
            part: PartInfo::SINGLE,
            prefer_warehouses: None,
        };
        let split = split_reserve(&request, 2, Some(1));
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].1.lines.len(), 2);
        assert_eq!(split[0].1.campaign, None);
        assert_eq!(split[1].1.campaign, Some(crate::ids::CampaignId(5)));
        assert!(split.iter().all(|(_, r)| r.part.parts == 2));
    }
}
