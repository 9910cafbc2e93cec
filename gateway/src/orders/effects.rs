//! Order stock effects outside a request: what partition threads commit on their own (a `Tick`
//! that cancels a parked order past its deadline) and what comes back later (stock that lets a
//! parked order be filled).
//!
//! Partition threads never wait on each other, so a thread hands its committed batch to the
//! [`OrderHook`] (never blocking) and a task on the io runtime carries the effects out through
//! the ordinary per-partition paths. The stock commands are idempotent to repeat (a release or
//! ship of a reservation that already ended counts as done; a restock is remembered by its
//! after-sales id), so doing one twice, here and by start-up reconciliation, is harmless.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oms_engine::event::MovementKind;
use oms_engine::orders::OrderEvent;
use oms_engine::Event;
use tokio::sync::mpsc;

use super::query::{OrderAnswer, OrderQuery};
use crate::server::ServerCtx;

/// How often the parked queue is retried at most (only after stock came back).
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Shown every committed batch by the partition threads (see `WorkerConfig::orders`).
#[derive(Debug)]
pub struct OrderHook {
    effects: mpsc::UnboundedSender<Vec<Event>>,
    /// Some partition committed a movement that makes stock sellable again.
    stock_returned: AtomicBool,
}

impl OrderHook {
    /// The hook and the receiving end its task drains ([`spawn`]).
    pub fn new() -> (Arc<OrderHook>, mpsc::UnboundedReceiver<Vec<Event>>) {
        let (effects, rx) = mpsc::unbounded_channel();
        // Start "returned" so the first pass allocates whatever waited while the server was down.
        (Arc::new(OrderHook { effects, stock_returned: AtomicBool::new(true) }), rx)
    }

    /// Called by a partition thread after a batch is durable: `batch` is every event of the batch,
    /// `tick` the ones its Tick produced. Never blocks.
    pub fn committed(&self, batch: &[Event], tick: &[Event]) {
        let returned = batch.iter().any(|e| {
            matches!(
                e,
                Event::StockMoved(m) if matches!(
                    m.kind,
                    MovementKind::Received
                        | MovementKind::AdjustedUp
                        | MovementKind::TransferIn
                        | MovementKind::Returned
                        | MovementKind::ReleasedCancel
                        | MovementKind::ReleasedExpired
                        | MovementKind::UnpooledFromCampaign
                        | MovementKind::BucketOut
                )
            )
        });
        if returned {
            self.stock_returned.store(true, Ordering::Release);
        }
        // Only a tick's effects: those of order commands are carried out by the request that sent
        // the command.
        let effects: Vec<Event> = tick.iter().filter(|e| is_effect(e)).cloned().collect();
        if !effects.is_empty() {
            // The receiver lives as long as the runtime; after that nothing is left to do.
            let _ = self.effects.send(effects);
        }
    }
}

fn is_effect(event: &Event) -> bool {
    matches!(
        event,
        Event::Order(OrderEvent::ReleaseStock { .. } | OrderEvent::ShipStock { .. } | OrderEvent::ReturnStock { .. })
    )
}

/// The task that carries out tick effects and retries the parked queue after stock came back.
/// A follower does neither (its primary does, and the follower replicates the result).
pub fn spawn(ctx: Arc<ServerCtx>, hook: Arc<OrderHook>, mut rx: mpsc::UnboundedReceiver<Vec<Event>>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(RETRY_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                received = rx.recv() => {
                    let Some(events) = received else { break };
                    if ctx.replication.is_following() {
                        continue;
                    }
                    if let Err(e) = ctx.apply_effects(&events).await {
                        tracing::error!(error = %e, "stock effect of a tick failed; start-up reconciliation repeats it");
                    }
                }
                _ = interval.tick() => {
                    if ctx.replication.is_following() || ctx.shutting_down.load(Ordering::Acquire) {
                        continue;
                    }
                    if hook.stock_returned.swap(false, Ordering::AcqRel) {
                        if let Err(e) = retry_waiting(&ctx).await {
                            tracing::warn!(error = %e, "retrying parked orders failed; the next stock change retries");
                            hook.stock_returned.store(true, Ordering::Release);
                        }
                    }
                }
            }
        }
    });
}

/// Allocate every approved order still waiting and every parked one, oldest first per partition.
async fn retry_waiting(ctx: &ServerCtx) -> Result<(), super::OrderError> {
    for p in 0..ctx.workers.partitions() {
        let OrderAnswer::Waiting(ids) = ctx.order_ask(p, OrderQuery::Waiting).await? else {
            return Err(super::OrderError::Unexpected);
        };
        for order in ids {
            let result = ctx.allocate(order).await?;
            tracing::debug!(order, ?result, "waiting order retried");
        }
    }
    Ok(())
}
