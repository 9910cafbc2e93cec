//! Replica partitions kept by a subscriber: built from a snapshot image (or empty when the log is
//! read from LSN 1), then every logged command is applied to get its events, deterministically.

use crate::codec::{decode_envelope, decode_image, RECORD_COMMAND};
use crate::{Envelope, Event, Limits, Partition};

/// Largest snapshot image a replica accepts (bounds the assembly buffer).
pub const MAX_IMAGE_BYTES: u64 = 4 << 30;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    #[error("partition {0} does not exist")]
    NoPartition(u32),
    #[error("partition {partition}: expected LSN {expected}, got {got} (a gap in the stream)")]
    Gap { partition: u32, expected: u64, got: u64 },
    #[error("partition {partition}: snapshot chunk out of order or too large")]
    Chunk { partition: u32 },
    #[error("partition {partition}: snapshot at LSN {lsn} does not decode: {reason}")]
    Image { partition: u32, lsn: u64, reason: String },
    #[error("partition {partition}: record {lsn} does not decode: {reason}")]
    Record { partition: u32, lsn: u64, reason: String },
    #[error("partition {partition}: unknown record type {record_type} at LSN {lsn}")]
    RecordType { partition: u32, lsn: u64, record_type: u8 },
    #[error("partition {partition}: record {lsn} was refused on replay ({error}); the replica diverged")]
    Replay { partition: u32, lsn: u64, error: crate::EngineError },
}

struct Slot {
    partition: Option<Partition>,
    /// The next LSN this replica expects.
    next_lsn: u64,
    /// A snapshot being assembled: (lsn, bytes so far).
    image: Option<(u64, Vec<u8>)>,
}

pub struct Replica {
    partitions: u32,
    limits: Limits,
    slots: Vec<Slot>,
}

impl Replica {
    pub fn new(partitions: u32, max_lines: usize) -> Replica {
        let limits = Limits { max_lines, ..Limits::default() };
        let slots = (0..partitions).map(|_| Slot { partition: None, next_lsn: 1, image: None }).collect();
        Replica { partitions, limits, slots }
    }

    /// Start a partition at a known state (e.g. a sink's stored image); records from `lsn + 1`.
    pub fn install(&mut self, partition: u32, lsn: u64, state: Partition) -> Result<(), ReplicaError> {
        let slot = self.slots.get_mut(partition as usize).ok_or(ReplicaError::NoPartition(partition))?;
        slot.partition = Some(state);
        slot.next_lsn = lsn + 1;
        Ok(())
    }

    /// The next LSN expected for a partition.
    pub fn next_lsn(&self, partition: u32) -> u64 {
        self.slots.get(partition as usize).map_or(1, |s| s.next_lsn)
    }

    pub fn partition(&self, partition: u32) -> Option<&Partition> {
        self.slots.get(partition as usize).and_then(|s| s.partition.as_ref())
    }

    /// Feed one snapshot chunk; true when the image is complete and installed.
    pub fn on_snapshot(
        &mut self,
        partition: u32,
        lsn: u64,
        offset: u64,
        total: u64,
        data: &[u8],
    ) -> Result<bool, ReplicaError> {
        let (limits, partitions) = (self.limits, self.partitions);
        let slot = self.slots.get_mut(partition as usize).ok_or(ReplicaError::NoPartition(partition))?;
        if total > MAX_IMAGE_BYTES {
            return Err(ReplicaError::Chunk { partition });
        }
        if offset == 0 {
            slot.image = Some((lsn, Vec::with_capacity(total.min(64 << 20) as usize)));
        }
        let Some((image_lsn, bytes)) = slot.image.as_mut() else {
            return Err(ReplicaError::Chunk { partition });
        };
        if *image_lsn != lsn || bytes.len() as u64 != offset || offset + data.len() as u64 > total {
            return Err(ReplicaError::Chunk { partition });
        }
        bytes.extend_from_slice(data);
        if (bytes.len() as u64) < total {
            return Ok(false);
        }
        let (lsn, bytes) = slot.image.take().unwrap_or_default();
        let refused = |reason: String| ReplicaError::Image { partition, lsn, reason };
        let image = decode_image(&bytes).map_err(|e| refused(e.to_string()))?;
        if (image.index, image.partitions) != (partition, partitions) {
            return Err(refused(format!("it holds partition {} of {}", image.index, image.partitions)));
        }
        slot.partition = Some(Partition::from_image(image, limits).map_err(|e| refused(e.to_string()))?);
        slot.next_lsn = lsn + 1;
        Ok(true)
    }

    /// Apply one record; the events it produced are appended to `events`. Returns the command.
    pub fn apply(
        &mut self,
        partition: u32,
        lsn: u64,
        record_type: u8,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<Envelope, ReplicaError> {
        let (partitions, limits) = (self.partitions, self.limits);
        let slot = self.slots.get_mut(partition as usize).ok_or(ReplicaError::NoPartition(partition))?;
        if lsn != slot.next_lsn {
            return Err(ReplicaError::Gap { partition, expected: slot.next_lsn, got: lsn });
        }
        if record_type != RECORD_COMMAND {
            return Err(ReplicaError::RecordType { partition, lsn, record_type });
        }
        let envelope =
            decode_envelope(payload).map_err(|e| ReplicaError::Record { partition, lsn, reason: e.to_string() })?;
        let state = slot.partition.get_or_insert_with(|| Partition::new(partition, partitions, limits));
        state.apply(&envelope, events).map_err(|error| ReplicaError::Replay { partition, lsn, error })?;
        slot.next_lsn = lsn + 1;
        Ok(envelope)
    }
}
