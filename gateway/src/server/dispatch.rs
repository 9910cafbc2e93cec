//! From a decoded request to its answer. The request borrows the connection's read buffer, so
//! everything it names is read here, in place: the hot path (single-partition reserve, confirm,
//! release, pay balance, ship) builds its engine command and goes straight into the owning
//! partition's queue with the connection's reply channel, with no task, no oneshot and no owned
//! copy of the request. Everything else is resolved here into owned values and answered by a
//! task through [`ServerCtx::execute`] and friends.

use std::sync::Arc;
use std::time::Instant;

use oms_engine::command::ReleaseCause;
use oms_engine::routing;
use oms_engine::{Command, Envelope, ReservationId};
use oms_proto::{ErrorCode, JsonRequest, Opcode, Request, Response};

use super::ServerCtx;
use crate::runtime::{now_ms, AnswerShape, ConnTx, Job, Outbound, Reply};
use crate::wire_error::gateway;

/// Answers that can be large (a whole catalog export, a batch): the connection bounds how many
/// of them may be unwritten at once.
pub fn is_heavy(opcode: Opcode) -> bool {
    matches!(opcode, Opcode::LookupSkus | Opcode::ExportStock | Opcode::Audit | Opcode::ReserveBatch)
}

impl ServerCtx {
    /// `scope`: the name of the API key the connection authenticated with (the scope of its
    /// idempotency keys).
    pub fn dispatch(
        self: &Arc<Self>,
        request: Request<'_>,
        request_id: u64,
        started: Instant,
        tx: &ConnTx,
        scope: &str,
    ) {
        let opcode = request.opcode();
        let heavy = is_heavy(opcode);
        let answer = |response: Response| {
            let _ = tx.send(Outbound { request_id, opcode: opcode as u16, heavy, started, response });
        };
        // Answer from a task: the future must own everything it needs.
        let spawn = |work: std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>| {
            let tx = tx.clone();
            tokio::spawn(async move {
                let response = work.await;
                let _ = tx.send(Outbound { request_id, opcode: opcode as u16, heavy, started, response });
            });
        };
        if self.replication.refuses(opcode) {
            return answer(Response::Error(gateway(
                ErrorCode::READ_ONLY,
                "this server is a follower: send writes to the primary",
            )));
        }
        match request {
            Request::Ping => answer(Response::Done),
            Request::Reserve(wire) => {
                // Sold out: answer before resolving lines or allocating anything.
                if let Some(e) = wire.campaign.and_then(|c| self.sold_out_campaign(oms_engine::CampaignId(c))) {
                    return answer(Response::Error(e));
                }
                let (reserve, set) = match self.build_reserve(&wire, scope) {
                    Ok(built) => built,
                    Err(e) => return answer(Response::Error(e)),
                };
                if let Some(e) = self.fast_reject(&reserve) {
                    return answer(Response::Error(e));
                }
                match self.single_partition(&reserve, set) {
                    Some(partition) => self.submit_direct(
                        partition,
                        Command::Reserve(reserve),
                        AnswerShape::Reserved,
                        request_id,
                        opcode,
                        started,
                        tx,
                    ),
                    None => {
                        let ctx = self.clone();
                        spawn(Box::pin(async move { ctx.reserve_coordinated(reserve).await }));
                    }
                }
            }
            Request::ReserveBatch(batch) => {
                // Resolved here (the carts borrow the read buffer), reserved by a task.
                let built: Vec<_> = batch.iter().map(|reserve| self.build_reserve(&reserve, scope)).collect();
                let ctx = self.clone();
                spawn(Box::pin(async move { ctx.reserve_batch(built).await }));
            }
            Request::Confirm { id } | Request::Release { id } | Request::PayBalance { id } | Request::Ship { id } => {
                let make = move |rid: ReservationId| match opcode {
                    Opcode::Confirm => Command::Confirm { id: rid },
                    Opcode::Release => Command::Release { id: rid, cause: ReleaseCause::Cancel },
                    Opcode::PayBalance => Command::PayBalance { id: rid },
                    _ => Command::Ship { id: rid },
                };
                let rid = ReservationId(id);
                let parts = routing::reservation_parts(rid);
                if parts.len() == 1 {
                    let partition = parts.iter().next().unwrap_or(u32::MAX);
                    if partition >= self.workers.partitions() {
                        return answer(Response::Error(
                            self.engine_error(&oms_engine::EngineError::UnknownReservation { id: rid }),
                        ));
                    }
                    self.submit_direct(partition, make(rid), AnswerShape::Done, request_id, opcode, started, tx);
                } else {
                    let ctx = self.clone();
                    spawn(Box::pin(async move { ctx.on_parts(id, make).await }));
                }
            }
            Request::GetStock { sku } => match self.resolve(sku) {
                Ok(sku) => {
                    let ctx = self.clone();
                    spawn(Box::pin(async move { ctx.stock(sku).await }));
                }
                Err(e) => answer(Response::Error(e)),
            },
            Request::GetReservation { id } => {
                let ctx = self.clone();
                spawn(Box::pin(async move { ctx.reservation(id).await }));
            }
            Request::Json { opcode, body } => match JsonRequest::parse(opcode, body) {
                Ok(json) => {
                    let ctx = self.clone();
                    spawn(Box::pin(async move { ctx.execute(json).await }));
                }
                Err(e) => answer(Response::Error(gateway(e.code(), e.to_string()))),
            },
            Request::Hello(_) => answer(Response::Error(gateway(ErrorCode::BAD_REQUEST, "already authenticated"))),
            Request::Subscribe(_) | Request::ReplicaAck { .. } => {
                answer(Response::Error(gateway(ErrorCode::INTERNAL, "subscriptions are served by the connection")))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn submit_direct(
        &self,
        partition: u32,
        command: Command,
        shape: AnswerShape,
        request_id: u64,
        opcode: Opcode,
        started: Instant,
        tx: &ConnTx,
    ) {
        let reply = Reply::Conn { tx: tx.clone(), request_id, opcode, started, shape };
        let job = Job::Apply { envelope: Envelope { now_ms: now_ms(), command }, reply };
        if self.workers.try_submit(partition, job).is_err() {
            self.metrics.refused.get_or_create(&crate::metrics::ReasonLabel { reason: "busy" }).inc();
            let _ = tx.send(Outbound {
                request_id,
                opcode: opcode as u16,
                heavy: false,
                started,
                response: Response::Error(gateway(ErrorCode::BUSY, "partition queue full; retry with backoff")),
            });
        }
    }
}
