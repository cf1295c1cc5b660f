//! BCS sequence lengths: unsigned LEB128, seven bits a byte, least significant first, at most
//! 2^31 − 1, canonical (no trailing zero bytes). One implementation for every hand-written
//! BCS layout (stored sliver values, sliver batches, quilt identifiers), so they cannot drift.

/// BCS bounds sequence lengths to 2^31 − 1.
pub const MAX_LEN: u32 = (1 << 31) - 1;

/// Bytes a length takes at most (`MAX_LEN` needs 31 bits: five groups of seven).
pub const MAX_BYTES: usize = 5;

/// Why a length prefix does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Uleb128Error {
    #[error("non-canonical length")]
    NonCanonical,
    #[error("length too large")]
    TooLarge,
    #[error("bad length")]
    Truncated,
}

/// `value` encoded into a fixed buffer: the buffer and how many of its bytes are used.
pub fn encode(value: u32) -> ([u8; MAX_BYTES], usize) {
    let mut out = [0u8; MAX_BYTES];
    let mut used = 0;
    let mut rest = value;
    while rest >= 0x80 {
        out[used] = (rest as u8) | 0x80;
        used += 1;
        rest >>= 7;
    }
    out[used] = rest as u8;
    (out, used + 1)
}

/// Append `value` encoded to `out`.
pub fn push(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes `value` takes encoded.
pub fn len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// Read a canonical length at the front of `bytes`: the length and the bytes after it.
pub fn read(bytes: &[u8]) -> Result<(usize, &[u8]), Uleb128Error> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(MAX_BYTES) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(Uleb128Error::NonCanonical);
            }
            if value > u64::from(MAX_LEN) {
                return Err(Uleb128Error::TooLarge);
            }
            return Ok((value as usize, &bytes[i + 1..]));
        }
    }
    Err(Uleb128Error::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_bcs_and_reads_back() {
        for v in [
            0usize,
            1,
            127,
            128,
            255,
            16_383,
            16_384,
            1 << 21,
            MAX_LEN as usize,
        ] {
            let expected = bcs::to_bytes(&vec![(); v]).expect("bcs");
            let mut pushed = Vec::new();
            push(&mut pushed, v);
            assert_eq!(pushed, expected, "push {v}");
            let (buf, used) = encode(v as u32);
            assert_eq!(&buf[..used], &expected[..], "encode {v}");
            assert_eq!(len(v), used, "len {v}");
            pushed.push(0xAB);
            assert_eq!(read(&pushed), Ok((v, &[0xAB][..])), "read {v}");
        }
    }

    #[test]
    fn rejects_what_bcs_rejects() {
        assert_eq!(read(&[0x80, 0x00]), Err(Uleb128Error::NonCanonical));
        assert_eq!(
            read(&[0x80, 0x80, 0x80, 0x80, 0x08]),
            Err(Uleb128Error::TooLarge)
        );
        assert_eq!(read(&[0x80]), Err(Uleb128Error::Truncated));
        assert_eq!(read(&[]), Err(Uleb128Error::Truncated));
        assert_eq!(read(&[0xff; 6]), Err(Uleb128Error::Truncated));
    }
}
