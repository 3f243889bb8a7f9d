//! Avro single-object encoding: `C3 01`, the writer schema's 64-bit Rabin fingerprint
//! (little-endian), then the Avro binary datum. The framing is decoded here and nowhere else.

use crate::{CodecError, Result};

pub const MARKER: [u8; 2] = [0xC3, 0x01];
pub const HEADER_LEN: usize = 10;

/// Writes the single-object header for a schema with this fingerprint.
pub fn write_header(out: &mut Vec<u8>, fingerprint: u64) {
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&fingerprint.to_le_bytes());
}

/// Splits a single-object message into the writer fingerprint and the Avro datum.
pub fn split(message: &[u8]) -> Result<(u64, &[u8])> {
    if message.len() < HEADER_LEN {
        return Err(CodecError::Truncated(message.len()));
    }
    let (header, body) = message.split_at(HEADER_LEN);
    if header[..2] != MARKER {
        return Err(CodecError::BadMarker);
    }
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&header[2..]);
    Ok((u64::from_le_bytes(fingerprint), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut out = Vec::new();
        write_header(&mut out, 0x0102_0304_0506_0708);
        out.push(42);
        let (fingerprint, body) = split(&out).expect("valid header");
        assert_eq!(fingerprint, 0x0102_0304_0506_0708);
        assert_eq!(body, &[42]);
        assert_eq!(
            &out[2..10],
            &[8, 7, 6, 5, 4, 3, 2, 1],
            "fingerprint is little-endian"
        );
    }

    #[test]
    fn short_and_unmarked_messages_are_typed_errors() {
        assert!(matches!(
            split(&[0xC3, 0x01, 0]),
            Err(CodecError::Truncated(3))
        ));
        assert!(matches!(split(&[0u8; 12]), Err(CodecError::BadMarker)));
    }
}
