//! Answers held until the followers have the records (`--ack-after-replica`).
//!
//! A partition thread that commits a batch while its log is ahead of the followers' quorum LSN
//! (`replication::AckBoard`) moves the batch's answers here instead of sending them. A held batch
//! is keyed by the LSN its answers may depend on (the log's last LSN at its commit) and released
//! as a whole when the quorum LSN reaches it, so the extra cost is one follower round trip per
//! batch. Batches are released in LSN order. One still held after the timeout is answered
//! `replica_timeout` (successes only: a refusal changed nothing and is answered as it is), never
//! acknowledged as if it were replicated.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use oms_engine::{Event, Outcome};
use prometheus_client::metrics::gauge::Gauge;

use super::{Failure, Reply};
use crate::metrics::Metrics;
use crate::replication::AckBoard;

struct HeldBatch {
    lsn: u64,
    committed: Instant,
    answers: Vec<(Reply, Result<Outcome, Failure>, Vec<Event>)>,
}

pub(super) struct HeldAnswers {
    board: Arc<AckBoard>,
    partition: u32,
    batches: VecDeque<HeldBatch>,
    count: usize,
    gauge: Gauge,
    metrics: Arc<Metrics>,
}

impl HeldAnswers {
    pub(super) fn new(board: Arc<AckBoard>, partition: u32, metrics: Arc<Metrics>) -> HeldAnswers {
        let gauge = metrics.replica_held_answers.get_or_create(&Metrics::partition(partition)).clone();
        HeldAnswers { board, partition, batches: VecDeque::new(), count: 0, gauge, metrics }
    }

    /// Answers that depend on records up to `last_lsn` must wait unless the followers have them.
    pub(super) fn must_hold(&self, last_lsn: u64) -> bool {
        last_lsn > self.board.quorum(self.partition)
    }

    /// Keep a committed batch's answers; `events` is the batch's event buffer the ranges index.
    pub(super) fn hold(
        &mut self,
        lsn: u64,
        pending: impl Iterator<Item = (Reply, Result<Outcome, Failure>, std::ops::Range<usize>)>,
        events: &[Event],
    ) {
        let answers: Vec<_> = pending
            .map(|(reply, result, range)| {
                let own = events.get(range).map(<[Event]>::to_vec).unwrap_or_default();
                (reply, result, own)
            })
            .collect();
        if answers.is_empty() {
            return;
        }
        self.count += answers.len();
        self.batches.push_back(HeldBatch { lsn, committed: Instant::now(), answers });
        self.gauge.set(self.count as i64);
    }

    /// When the oldest held batch times out.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.batches.front().map(|b| b.committed + self.board.timeout())
    }

    /// Answer the batches the followers now cover, then those past the timeout.
    pub(super) fn release(&mut self, names: &dyn crate::wire_error::CodeNames) {
        if self.batches.is_empty() {
            return;
        }
        let quorum = self.board.quorum(self.partition);
        while self.batches.front().is_some_and(|b| b.lsn <= quorum) {
            if let Some(batch) = self.batches.pop_front() {
                self.metrics.replica_ack_wait.observe(batch.committed.elapsed().as_secs_f64());
                self.answer(batch, false, names);
            }
        }
        let timeout = self.board.timeout();
        while self.batches.front().is_some_and(|b| b.committed.elapsed() >= timeout) {
            if let Some(batch) = self.batches.pop_front() {
                self.answer(batch, true, names);
            }
        }
        self.gauge.set(self.count as i64);
    }

    /// The thread is stopping: nothing will release what is still held.
    pub(super) fn expire_all(&mut self, names: &dyn crate::wire_error::CodeNames) {
        while let Some(batch) = self.batches.pop_front() {
            self.answer(batch, true, names);
        }
        self.gauge.set(0);
    }

    fn answer(&mut self, batch: HeldBatch, timed_out: bool, names: &dyn crate::wire_error::CodeNames) {
        self.count = self.count.saturating_sub(batch.answers.len());
        for (reply, result, events) in batch.answers {
            let result = match result {
                Ok(_) if timed_out => {
                    self.metrics.replica_timeouts.inc();
                    Err(Failure::NotReplicated)
                }
                other => other,
            };
            super::worker::deliver(reply, result, &events, names);
        }
    }
}
