//! On-disk format, versions 1 and 2.
//!
//! ```text
//! file      := header record*
//! header v1 := magic "FLOELOG\0" (8 bytes) ‖ version u32 LE (= 1) ‖ reserved u32 LE (= 0)
//! header v2 := magic "FLOELOG\0" (8 bytes) ‖ version u32 LE (= 2) ‖ reserved u32 LE (= 0)
//!              ‖ first index u64 LE
//! record    := len u32 LE ‖ crc u32 LE ‖ index u64 LE ‖ payload (len bytes)
//! crc       := CRC-32 (IEEE) of (index u64 LE ‖ payload)
//! ```
//!
//! A log is a sequence of segment files. The newest, the one appended to, is always
//! `ledger.log`; older ones are sealed as `ledger-<first index, 20 digits>.log`. A version-1
//! file holds records from index 0; a version-2 file records the index of its first record.
//! Each file is written with the oldest version that can express it: a log that never rolled
//! over is one version-1 file, byte for byte what builds before segments wrote (and read), and
//! a file starting past 0 is version 2, which those builds refuse instead of misreading.
//!
//! Record indices are consecutive across files. The length field is not covered by the CRC;
//! a corrupted length shows up as a short read or as a CRC mismatch over the wrong bytes.

/// Name of the log file inside the data directory.
pub const LOG_FILE_NAME: &str = "ledger.log";

/// The eight magic bytes that open every log file.
pub const MAGIC: [u8; 8] = *b"FLOELOG\0";

/// The newest format version this build reads and writes (see the module docs).
pub const FORMAT_VERSION: u32 = 2;

/// Size of a version-1 file header in bytes (a file whose records start at index 0).
pub const FILE_HEADER_LEN: u64 = 16;

/// Size of a version-2 file header in bytes (it adds the first record's index).
pub const FILE_HEADER_V2_LEN: u64 = 24;

/// Default size past which the file being appended to is sealed and a new one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// File name of the sealed segment whose first record has index `first`.
pub fn sealed_segment_name(first: u64) -> String {
    format!("ledger-{first:020}.log")
}

/// The first index encoded in a sealed segment's file name, if `name` is one.
pub(crate) fn parse_sealed_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("ledger-")?.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Size of each record's header (length, CRC, index) in bytes.
pub const RECORD_HEADER_LEN: usize = 16;

/// Default maximum payload length: 16 MiB.
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;

/// The encoded header of a file whose first record has index `first`: version 1 when that is
/// 0, version 2 otherwise.
pub(crate) fn encode_file_header(first: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(FILE_HEADER_V2_LEN as usize);
    h.extend_from_slice(&MAGIC);
    let version: u32 = if first == 0 { 1 } else { 2 };
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // reserved
    if first != 0 {
        h.extend_from_slice(&first.to_le_bytes());
    }
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
        let h = encode_file_header(0);
        assert_eq!(&h, b"FLOELOG\0\x01\0\0\0\0\0\0\0");
        let d = decode_file_header(h[..16].try_into().unwrap());
        assert_eq!(d.magic, MAGIC);
        assert_eq!(d.version, 1);
        assert_eq!(d.reserved, 0);

        let h = encode_file_header(0x0102);
        assert_eq!(h.len() as u64, FILE_HEADER_V2_LEN);
        assert_eq!(&h[..16], b"FLOELOG\0\x02\0\0\0\0\0\0\0");
        assert_eq!(&h[16..], &0x0102u64.to_le_bytes());
    }

    #[test]
    fn sealed_segment_names_round_trip() {
        assert_eq!(sealed_segment_name(42), "ledger-00000000000000000042.log");
        assert_eq!(
            parse_sealed_segment_name(&sealed_segment_name(42)),
            Some(42)
        );
        assert_eq!(
            parse_sealed_segment_name(&sealed_segment_name(u64::MAX)),
            Some(u64::MAX)
        );
        for other in [
            "ledger.log",
            "ledger-42.log",
            "ledger-0000000000000000004x.log",
            "x",
        ] {
            assert_eq!(parse_sealed_segment_name(other), None, "{other}");
        }
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
