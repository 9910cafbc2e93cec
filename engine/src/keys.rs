//! Idempotency keys at their home partition (`routing::key_home`): which reservation each key
//! made, with which request, and for how long it is remembered.
//!
//! A key is compared as a key (scope and bytes, `command::IdempotencyKey`), never through a hash,
//! so two keys cannot collide. A claim is remembered at least until its reservation's hold
//! deadline; after that it stays while fewer than `limit` claims are kept, the earliest deadline
//! going first. Eviction happens when a claim is added, at the time of the command that adds it,
//! so replaying the log evicts exactly the same claims.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::command::IdempotencyKey;
use crate::ids::{ReservationId, TimeMs};

/// What a key stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// The reservation the key made.
    pub id: ReservationId,
    /// `routing::request_fingerprint` of the request that made it: a retry must match.
    pub fingerprint: u64,
    /// Not forgotten before this time (the hold's first deadline).
    pub remember_until_ms: TimeMs,
}

/// A claim as a snapshot image stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ClaimImage {
    pub key: IdempotencyKey,
    pub id: ReservationId,
    pub fingerprint: u64,
    pub remember_until_ms: TimeMs,
}

/// The keys a partition is home to.
#[derive(Clone, Debug, Default)]
pub struct KeyClaims {
    by_key: FxHashMap<IdempotencyKey, Claim>,
    /// Every claim by (deadline, key): the eviction order, and a deterministic image order.
    by_deadline: BTreeSet<(TimeMs, IdempotencyKey)>,
}

impl KeyClaims {
    pub fn get(&self, key: &IdempotencyKey) -> Option<&Claim> {
        self.by_key.get(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Remembers a new claim (the key must not be claimed), then forgets the claims past their
    /// deadline at `now_ms` beyond `limit`, earliest deadline first.
    pub fn insert(&mut self, key: IdempotencyKey, claim: Claim, now_ms: TimeMs, limit: usize) {
        debug_assert!(!self.by_key.contains_key(&key), "a claimed key is claimed again");
        self.by_deadline.insert((claim.remember_until_ms, key.clone()));
        self.by_key.insert(key, claim);
        while self.by_key.len() > limit {
            let Some(first) = self.by_deadline.first() else { break };
            if first.0 > now_ms {
                break;
            }
            if let Some((_, key)) = self.by_deadline.pop_first() {
                self.by_key.remove(&key);
            }
        }
        debug_assert_eq!(self.by_key.len(), self.by_deadline.len());
    }

    /// Forgets `key` if it still stands for `id`; answers whether it did.
    pub fn forget(&mut self, key: &IdempotencyKey, id: ReservationId) -> bool {
        match self.by_key.get(key) {
            Some(claim) if claim.id == id => {
                let deadline = claim.remember_until_ms;
                self.by_key.remove(key);
                self.by_deadline.remove(&(deadline, key.clone()));
                true
            }
            _ => false,
        }
    }

    /// Every claim in (deadline, key) order, as a snapshot image stores them.
    pub fn image(&self) -> Vec<ClaimImage> {
        self.by_deadline
            .iter()
            .filter_map(|(_, key)| {
                self.by_key.get(key).map(|c| ClaimImage {
                    key: key.clone(),
                    id: c.id,
                    fingerprint: c.fingerprint,
                    remember_until_ms: c.remember_until_ms,
                })
            })
            .collect()
    }

    /// Rebuilds from an image (a key listed twice keeps its first claim).
    pub fn from_image(image: Vec<ClaimImage>) -> KeyClaims {
        let mut claims = KeyClaims::default();
        for c in image {
            if claims.by_key.contains_key(&c.key) {
                continue;
            }
            let claim = Claim { id: c.id, fingerprint: c.fingerprint, remember_until_ms: c.remember_until_ms };
            claims.by_deadline.insert((claim.remember_until_ms, c.key.clone()));
            claims.by_key.insert(c.key, claim);
        }
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey { scope: "shop".into(), key: k.into() }
    }

    fn claim(id: u64, until: TimeMs) -> Claim {
        Claim { id: ReservationId(id), fingerprint: id * 10, remember_until_ms: until }
    }

    #[test]
    fn claims_outlive_their_deadline_only_while_room_remains() {
        // Checks that a claim is never forgotten before its deadline, however many there are;
        // that past their deadline the earliest go first once over the limit; and that forget
        // drops a key only while it still names the same reservation.
        let mut claims = KeyClaims::default();
        claims.insert(key("a"), claim(1, 100), 0, 2);
        claims.insert(key("b"), claim(2, 300), 0, 2);
        claims.insert(key("c"), claim(3, 200), 0, 2);
        assert_eq!(claims.len(), 3, "nothing is past its deadline at t=0");
        claims.insert(key("d"), claim(4, 900), 250, 2);
        assert_eq!((claims.get(&key("a")), claims.get(&key("c"))), (None, None));
        assert_eq!(claims.get(&key("b")).map(|c| c.id), Some(ReservationId(2)));
        assert!(!claims.forget(&key("b"), ReservationId(9)));
        assert!(claims.forget(&key("b"), ReservationId(2)));
        assert_eq!(claims.len(), 1);
        let rebuilt = KeyClaims::from_image(claims.image());
        assert_eq!(rebuilt.image(), claims.image());
        assert_ne!(key("x"), IdempotencyKey { scope: "other".into(), key: "x".into() });
    }
}
