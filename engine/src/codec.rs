//! Byte encodings of what the log and snapshots store, with validated (checked) decoding: bytes
//! from disk or the network are never trusted.

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::command::Envelope;
use crate::partition::PartitionImage;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("invalid or corrupt bytes: {0}")]
    Decode(String),
}

fn aligned(bytes: &[u8]) -> AlignedVec<16> {
    let mut buffer = AlignedVec::<16>::with_capacity(bytes.len());
    buffer.extend_from_slice(bytes);
    buffer
}

pub fn encode_envelope(envelope: &Envelope) -> Result<AlignedVec, CodecError> {
    rkyv::to_bytes::<rancor::Error>(envelope).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decode a command record after checking every byte of it.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, CodecError> {
    rkyv::from_bytes::<Envelope, rancor::Error>(&aligned(bytes)).map_err(|e| CodecError::Decode(e.to_string()))
}

/// Snapshot images start with this tag, then the rkyv bytes of a [`PartitionImage`]. Images
/// without it were written before the image held idempotency claims
/// ([`crate::partition::PartitionImageV1`]) and load with none (the keys of that version were
/// hashes the engine no longer reads).
pub const IMAGE_TAG: &[u8; 8] = b"OMSIMG03";
/// Images with idempotency claims but without the order desk's state
/// ([`crate::partition::PartitionImageV2`]): load with no names, volumes or pick overrides.
pub const IMAGE_TAG_V2: &[u8; 8] = b"OMSIMG02";

pub fn encode_image(image: &PartitionImage) -> Result<AlignedVec, CodecError> {
    let body = rkyv::to_bytes::<rancor::Error>(image).map_err(|e| CodecError::Encode(e.to_string()))?;
    let mut out = AlignedVec::with_capacity(IMAGE_TAG.len() + body.len());
    out.extend_from_slice(IMAGE_TAG);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decode a snapshot image (either layout) after checking every byte of it.
pub fn decode_image(bytes: &[u8]) -> Result<PartitionImage, CodecError> {
    let decode_error = |e: rancor::Error| CodecError::Decode(e.to_string());
    if let Some(body) = bytes.strip_prefix(IMAGE_TAG_V2.as_slice()) {
        return rkyv::from_bytes::<crate::partition::PartitionImageV2, rancor::Error>(&aligned(body))
            .map(PartitionImage::from)
            .map_err(decode_error);
    }
    match bytes.strip_prefix(IMAGE_TAG.as_slice()) {
        Some(body) => rkyv::from_bytes::<PartitionImage, rancor::Error>(&aligned(body)).map_err(decode_error),
        None => rkyv::from_bytes::<crate::partition::PartitionImageV1, rancor::Error>(&aligned(bytes))
            .map(PartitionImage::from)
            .map_err(decode_error),
    }
}

/// Encode into a reused buffer, so the writer's hot path does not allocate per command.
pub fn encode_envelope_into(envelope: &Envelope, mut buffer: AlignedVec) -> Result<AlignedVec, CodecError> {
    buffer.clear();
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(envelope, buffer).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Record types in the log.
pub const RECORD_COMMAND: u8 = 1;
