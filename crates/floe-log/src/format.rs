//! On-disk format, version 1.
//!
//! ```text
//! file   := header record*
//! header := magic "FLOELOG\0" (8 bytes) ‖ version u32 LE (= 1) ‖ reserved u32 LE (= 0)
//! record := len u32 LE ‖ crc u32 LE ‖ index u64 LE ‖ payload (len bytes)
//! crc    := CRC-32 (IEEE) of (index u64 LE ‖ payload)
//! ```
//!
//! Record indices start at 0 and are consecutive. The length field is not covered by the CRC;
//! a corrupted length shows up as a short read or as a CRC mismatch over the wrong bytes.

/// Name of the log file inside the data directory.
pub const LOG_FILE_NAME: &str = "ledger.log";

/// The eight magic bytes that open every log file.
pub const MAGIC: [u8; 8] = *b"FLOELOG\0";

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the file header in bytes.
pub const FILE_HEADER_LEN: u64 = 16;

/// Size of each record's header (length, CRC, index) in bytes.
pub const RECORD_HEADER_LEN: usize = 16;

/// Default maximum payload length: 16 MiB.
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;

/// The encoded file header.
pub(crate) fn encode_file_header() -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // bytes 12..16: reserved, zero.
    h
}

/// A decoded file header (not yet validated).
pub(crate) struct FileHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub reserved: u32,
}

pub(crate) fn decode_file_header(b: &[u8; FILE_HEADER_LEN as usize]) -> FileHeader {
    FileHeader {
        magic: b[..8].try_into().expect("8 bytes"),
        version: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
        reserved: u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")),
    }
}

/// A decoded record header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordHeader {
    pub len: u32,
    pub crc: u32,
    pub index: u64,
}

pub(crate) fn decode_record_header(b: &[u8; RECORD_HEADER_LEN]) -> RecordHeader {
    RecordHeader {
        len: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
        crc: u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")),
        index: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
    }
}

/// CRC-32 of `index` (LE) followed by `payload`.
pub(crate) fn checksum(index: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Append the encoding of one record to `buf`. The caller has checked `payload.len() <= u32::MAX`.
pub(crate) fn encode_record(buf: &mut Vec<u8>, index: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length checked by caller");
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&checksum(index, payload).to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Encoded size of a record with a payload of `payload_len` bytes.
pub(crate) fn record_len(payload_len: usize) -> u64 {
    RECORD_HEADER_LEN as u64 + payload_len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = encode_file_header();
        assert_eq!(&h, b"FLOELOG\0\x01\0\0\0\0\0\0\0");
        let d = decode_file_header(&h);
        assert_eq!(d.magic, MAGIC);
        assert_eq!(d.version, 1);
        assert_eq!(d.reserved, 0);
    }

    #[test]
    fn record_layout() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"abc");
        assert_eq!(buf.len() as u64, record_len(3));
        assert_eq!(&buf[0..4], &3u32.to_le_bytes());
        let mut crc_input = 7u64.to_le_bytes().to_vec();
        crc_input.extend_from_slice(b"abc");
        assert_eq!(&buf[4..8], &crc32fast::hash(&crc_input).to_le_bytes());
        assert_eq!(&buf[8..16], &7u64.to_le_bytes());
        assert_eq!(&buf[16..], b"abc");
        let h = decode_record_header(buf[..16].try_into().unwrap());
        assert_eq!((h.len, h.crc, h.index), (3, checksum(7, b"abc"), 7));
    }
}
