//! The hot path: single-partition reserve / confirm / release go straight into the owning
//! partition's queue with the connection's reply channel, so the answer needs no task, no
//! oneshot and no extra hop. Everything else runs in a task through [`ServerCtx::execute`].

use std::sync::Arc;
use std::time::Instant;

use oms_engine::command::ReleaseCause;
use oms_engine::routing;
use oms_engine::{Command, Envelope, ReservationId};

use super::ServerCtx;
use crate::protocol::{Opcode, Request, Response};
use crate::runtime::{now_ms, AnswerShape, ConnTx, Job, Outbound, Reply};
use crate::wire_error::GatewayCode;

impl ServerCtx {
    /// `scope`: the name of the API key the connection authenticated with.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        self: &Arc<Self>,
        request: Request,
        request_id: u64,
        opcode: Opcode,
        started: Instant,
        tx: &ConnTx,
        scope: &str,
    ) {
        let answer = |response: Response| {
            let _ = tx.send(Outbound { request_id, opcode, started, response });
        };
        if self.replication.refuses(opcode) {
            return answer(Response::Error(
                GatewayCode::ReadOnly.error("this server is a follower: send writes to the primary"),
            ));
        }
        match request {
            Request::Ping => answer(Response::Pong),
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
                if let Some(partition) = self.single_partition(&reserve, set) {
                    self.submit_direct(
                        partition,
                        Command::Reserve(reserve),
                        AnswerShape::Reserved,
                        request_id,
                        opcode,
                        started,
                        tx,
                    );
                } else {
                    let ctx = self.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let response = ctx.reserve_coordinated(reserve).await;
                        let _ = tx.send(Outbound { request_id, opcode, started, response });
                    });
                }
            }
            Request::Confirm { id } | Request::Release { id } | Request::PayBalance { id } | Request::Ship { id }
                if routing::reservation_parts(ReservationId(id)).len() == 1 =>
            {
                let rid = ReservationId(id);
                let partition = routing::reservation_parts(rid).iter().next().unwrap_or(u32::MAX);
                if partition >= self.workers.partitions() {
                    return answer(Response::Error(crate::wire_error::from_engine(
                        &oms_engine::EngineError::UnknownReservation { id: rid },
                    )));
                }
                let command = match opcode {
                    Opcode::Confirm => Command::Confirm { id: rid },
                    Opcode::Release => Command::Release { id: rid, cause: ReleaseCause::Cancel },
                    Opcode::PayBalance => Command::PayBalance { id: rid },
                    _ => Command::Ship { id: rid },
                };
                self.submit_direct(partition, command, AnswerShape::Done, request_id, opcode, started, tx);
            }
            other => {
                let ctx = self.clone();
                let tx = tx.clone();
                let scope = scope.to_owned();
                tokio::spawn(async move {
                    let response = ctx.execute(other, &scope).await;
                    let _ = tx.send(Outbound { request_id, opcode, started, response });
                });
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
                opcode,
                started,
                response: Response::Error(GatewayCode::Busy.error("partition queue full; retry with backoff")),
            });
        }
    }
}
