//! FileLog against real files: round trips, crash recovery, header errors, limits.

use std::fs;
use std::path::{Path, PathBuf};

use floe_log::format::{FILE_HEADER_LEN, LOG_FILE_NAME, RECORD_HEADER_LEN};
use floe_log::{DurableLog, FileLog, LogError, LogOptions, TailDamage};
use proptest::prelude::*;

fn open(dir: &Path) -> (FileLog, Vec<Vec<u8>>) {
    FileLog::open(dir, LogOptions::default()).expect("open log")
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join(LOG_FILE_NAME)
}

/// Payloads of assorted sizes (including empty) that differ from one another.
fn sample_payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..(i * 37) % 300).map(|j| (i * 31 + j) as u8).collect())
        .collect()
}

fn append_each(log: &mut FileLog, payloads: &[Vec<u8>]) {
    for p in payloads {
        let before = log.len();
        assert_eq!(log.append_durable(&[p]).unwrap(), before);
    }
}

/// A log holding `n` sample records; returns the payloads and the file bytes.
fn build_log(dir: &Path, n: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let payloads = sample_payloads(n);
    let (mut log, replay) = open(dir);
    assert!(replay.is_empty());
    append_each(&mut log, &payloads);
    drop(log);
    let bytes = fs::read(log_path(dir)).unwrap();
    (payloads, bytes)
}

#[test]
fn new_log_has_header_only() {
    let dir = tempfile::tempdir().unwrap();
    let (log, replay) = open(dir.path());
    assert!(replay.is_empty());
    assert_eq!(log.len(), 0);
    assert!(log.is_empty());
    assert_eq!(log.byte_len(), FILE_HEADER_LEN);
    assert_eq!(log.recovery().truncation, None);
    let bytes = fs::read(log_path(dir.path())).unwrap();
    assert_eq!(bytes, b"FLOELOG\0\x01\0\0\0\0\0\0\0");
    assert!(!dir.path().join("ledger.log.tmp").exists());
}

#[test]
fn append_reopen_replay_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(50);
    {
        let (mut log, _) = open(dir.path());
        append_each(&mut log, &payloads[..10]);
        // A multi-record batch and an empty batch.
        let batch: Vec<&[u8]> = payloads[10..40].iter().map(Vec::as_slice).collect();
        assert_eq!(log.append_durable(&batch).unwrap(), 10);
        assert_eq!(log.append_durable(&[]).unwrap(), 40);
        assert_eq!(log.read_range(0, 40).unwrap(), &payloads[..40]);
    }
    {
        let (mut log, replay) = open(dir.path());
        assert_eq!(replay, &payloads[..40]);
        assert_eq!(log.recovery().records, 40);
        append_each(&mut log, &payloads[40..]);
    }
    let (log, replay) = open(dir.path());
    assert_eq!(replay, payloads);
    assert_eq!(log.len(), 50);
    assert_eq!(log.read_range(0, 50).unwrap(), payloads);
    assert_eq!(log.read_range(17, 23).unwrap(), &payloads[17..23]);
    assert_eq!(log.read_range(49, 50).unwrap(), &payloads[49..]);
    assert!(log.read_range(50, 50).unwrap().is_empty());
    let expected_len: u64 = FILE_HEADER_LEN
        + payloads
            .iter()
            .map(|p| (RECORD_HEADER_LEN + p.len()) as u64)
            .sum::<u64>();
    assert_eq!(log.byte_len(), expected_len);
    assert_eq!(fs::metadata(log.path()).unwrap().len(), expected_len);
}

#[test]
fn read_range_out_of_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path());
    append_each(&mut log, &sample_payloads(3));
    for (from, to) in [(0, 4), (2, 1), (4, 4)] {
        match log.read_range(from, to) {
            Err(LogError::RangeOutOfBounds { len: 3, .. }) => {}
            other => panic!("read_range({from}, {to}) gave {other:?}"),
        }
    }
}

#[test]
fn read_range_detects_corruption_after_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path());
    append_each(&mut log, &sample_payloads(3));
    // Flip the last byte of the file (inside record 2's payload) behind the log's back.
    let path = log_path(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    assert!(log.read_range(0, 2).is_ok());
    match log.read_range(1, 3) {
        Err(LogError::Corrupt { index: 2, .. }) => {}
        other => panic!("expected corruption of record 2, got {other:?}"),
    }
}

/// Reopen a log whose file holds `bytes`, expecting the first `good` of `payloads` to survive
/// and the file to be cut to `good_end`; then check that appends continue consecutively.
fn check_recovers_prefix(
    dir: &Path,
    bytes: &[u8],
    payloads: &[Vec<u8>],
    good: usize,
    good_end: u64,
) {
    fs::write(log_path(dir), bytes).unwrap();
    let (mut log, replay) = open(dir);
    assert_eq!(replay, &payloads[..good]);
    assert_eq!(log.len(), good as u64);
    assert_eq!(log.byte_len(), good_end);
    assert_eq!(fs::metadata(log_path(dir)).unwrap().len(), good_end);
    match &log.recovery().truncation {
        None => assert_eq!(bytes.len() as u64, good_end),
        Some(t) => {
            assert_eq!(t.offset, good_end);
            assert_eq!(t.discarded_bytes, bytes.len() as u64 - good_end);
        }
    }
    let extra = b"after recovery".to_vec();
    assert_eq!(log.append_durable(&[&extra]).unwrap(), good as u64);
    drop(log);
    let (log, replay) = open(dir);
    assert_eq!(replay.len(), good + 1);
    assert_eq!(&replay[..good], &payloads[..good]);
    assert_eq!(replay[good], extra);
    assert_eq!(log.recovery().truncation, None);
}

#[test]
fn torn_last_record_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (payloads, bytes) = build_log(dir.path(), 6);
    let last_len = RECORD_HEADER_LEN + payloads[5].len();
    assert!(payloads[5].len() > 100, "want a long last record");
    let last_start = bytes.len() - last_len;
    for cut in last_start..bytes.len() {
        check_recovers_prefix(dir.path(), &bytes[..cut], &payloads, 5, last_start as u64);
    }
    // Spot-check the damage classification at both sides of the header boundary.
    fs::write(log_path(dir.path()), &bytes[..last_start + 3]).unwrap();
    let (log, _) = open(dir.path());
    let t = log.recovery().truncation.clone().unwrap();
    assert_eq!(t.damage, TailDamage::ShortHeader { available: 3 });
    assert!(!t.valid_record_follows);
    drop(log);
    fs::write(
        log_path(dir.path()),
        &bytes[..last_start + RECORD_HEADER_LEN + 1],
    )
    .unwrap();
    let (log, _) = open(dir.path());
    assert!(matches!(
        log.recovery().truncation.as_ref().unwrap().damage,
        TailDamage::ShortPayload { available: 1, .. }
    ));
}

#[test]
fn flipped_byte_in_last_record_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (payloads, bytes) = build_log(dir.path(), 6);
    let last_start = bytes.len() - (RECORD_HEADER_LEN + payloads[5].len());
    for pos in last_start..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut damaged = bytes.clone();
            damaged[pos] ^= flip;
            check_recovers_prefix(dir.path(), &damaged, &payloads, 5, last_start as u64);
        }
    }
}

#[test]
fn mid_log_corruption_cuts_from_there_and_flags_following_data() {
    let dir = tempfile::tempdir().unwrap();
    let (payloads, bytes) = build_log(dir.path(), 6);
    // Byte offset of record 2 and a byte inside its payload.
    let rec2 = FILE_HEADER_LEN as usize
        + payloads[..2]
            .iter()
            .map(|p| RECORD_HEADER_LEN + p.len())
            .sum::<usize>();
    let mut damaged = bytes.clone();
    damaged[rec2 + RECORD_HEADER_LEN + 5] ^= 0xff;
    fs::write(log_path(dir.path()), &damaged).unwrap();
    let (log, replay) = open(dir.path());
    assert_eq!(replay, &payloads[..2]);
    let t = log.recovery().truncation.clone().unwrap();
    assert_eq!(t.offset, rec2 as u64);
    assert_eq!(t.damage, TailDamage::BadChecksum);
    assert!(
        t.valid_record_follows,
        "record 3 is intact and should be noticed"
    );
}

#[test]
fn non_consecutive_index_cuts_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (payloads, bytes) = build_log(dir.path(), 3);
    // Append a self-consistent record (valid CRC) whose index skips ahead.
    let mut damaged = bytes.clone();
    let payload = b"skipped ahead";
    let index = 7u64;
    let mut crc_input = index.to_le_bytes().to_vec();
    crc_input.extend_from_slice(payload);
    damaged.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    damaged.extend_from_slice(&crc32fast::hash(&crc_input).to_le_bytes());
    damaged.extend_from_slice(&index.to_le_bytes());
    damaged.extend_from_slice(payload);
    fs::write(log_path(dir.path()), &damaged).unwrap();
    let (log, replay) = open(dir.path());
    assert_eq!(replay, payloads);
    assert_eq!(
        log.recovery().truncation.as_ref().unwrap().damage,
        TailDamage::IndexMismatch {
            expected: 3,
            found: 7
        }
    );
    assert_eq!(log.byte_len(), bytes.len() as u64);
}

fn open_err(dir: &Path) -> LogError {
    FileLog::open(dir, LogOptions::default()).expect_err("open should fail")
}

#[test]
fn bad_magic_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = build_log(dir.path(), 2);
    bytes[..8].copy_from_slice(b"NOTALOG!");
    fs::write(log_path(dir.path()), &bytes).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, LogError::BadMagic { found, .. } if &found == b"NOTALOG!"));
    let msg = err.to_string();
    assert!(msg.contains("ledger.log"), "{msg}");
    assert!(msg.contains("NOTALOG!"), "{msg}");
    // Nothing was truncated.
    assert_eq!(fs::read(log_path(dir.path())).unwrap(), bytes);
}

#[test]
fn future_version_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = build_log(dir.path(), 2);
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    fs::write(log_path(dir.path()), &bytes).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(
        err,
        LogError::UnsupportedVersion {
            found: 3,
            supported: 2,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("ledger.log") && msg.contains("version 3") && msg.contains("upgrade"),
        "{msg}"
    );
}

#[test]
fn short_or_odd_header_is_a_hard_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(log_path(dir.path()), b"FLOELOG\0\x01").unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, LogError::BadHeader { .. }), "{err}");
    assert!(err.to_string().contains("9 bytes"), "{err}");

    fs::write(log_path(dir.path()), b"FLOELOG\0\x01\0\0\0\x05\0\0\0").unwrap();
    let err = open_err(dir.path());
    assert!(err.to_string().contains("reserved"), "{err}");
}

#[test]
fn oversize_payload_refused_and_log_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        max_payload_len: 100,
        ..LogOptions::default()
    };
    let (mut log, _) = FileLog::open(dir.path(), opts.clone()).unwrap();
    assert_eq!(log.max_payload_len(), 100);
    let ok = vec![1u8; 100];
    let big = vec![2u8; 101];
    assert_eq!(log.append_durable(&[&ok]).unwrap(), 0);
    match log.append_durable(&[&ok, &big]) {
        Err(LogError::PayloadTooLarge { len: 101, max: 100 }) => {}
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert_eq!(log.len(), 1, "a refused batch writes nothing");
    assert!(!log.is_poisoned());
    assert_eq!(log.append_durable(&[&ok]).unwrap(), 1);
    drop(log);
    let (_, replay) = FileLog::open(dir.path(), opts).unwrap();
    assert_eq!(replay, vec![ok.clone(), ok]);
}

#[test]
fn default_max_payload_is_16_mib() {
    assert_eq!(LogOptions::default().max_payload_len, 16 * 1024 * 1024);
}

#[test]
fn second_open_is_refused_while_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path());
    assert!(matches!(open_err(dir.path()), LogError::Locked { .. }));
    drop(log);
    let _ = open(dir.path());
}

#[test]
fn creates_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    let (mut log, _) = open(&nested);
    log.append_durable(&[b"x"]).unwrap();
    assert!(log_path(&nested).exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// For any set of records and any crash point, recovery yields exactly the records that
    /// were completely written before that point.
    #[test]
    fn recovery_yields_complete_prefix(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..12),
        cut_frac in 0.0f64..=1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path());
        let mut ends = vec![log.byte_len()];
        for p in &payloads {
            log.append_durable(&[p]).unwrap();
            ends.push(log.byte_len());
        }
        drop(log);
        let bytes = fs::read(log_path(dir.path())).unwrap();
        let span = bytes.len() as u64 - FILE_HEADER_LEN;
        let cut = FILE_HEADER_LEN + (span as f64 * cut_frac) as u64;
        fs::write(log_path(dir.path()), &bytes[..cut as usize]).unwrap();
        let complete = ends.iter().filter(|&&e| e <= cut).count() - 1;
        let (log, replay) = open(dir.path());
        prop_assert_eq!(&replay[..], &payloads[..complete]);
        prop_assert_eq!(log.byte_len(), ends[complete]);
    }
}

/// `open_from` hands back only the payloads from the asked index on, but still checks every
/// record: damage before that index cuts the log there, as `open` does.
#[test]
fn open_from_keeps_later_payloads_and_still_checks_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (payloads, bytes) = build_log(dir.path(), 10);
    let (log, replay) = FileLog::open_from(dir.path(), LogOptions::default(), 6).unwrap();
    assert_eq!((replay.first, replay.records), (6, 10));
    assert_eq!(replay.payloads, &payloads[6..]);
    assert_eq!(log.len(), 10);
    assert_eq!(
        log.read_range(0, 2).unwrap(),
        &payloads[..2],
        "offsets of all kept"
    );
    drop(log);
    let (_, past) = FileLog::open_from(dir.path(), LogOptions::default(), 20).unwrap();
    assert_eq!((past.first, past.records), (10, 10));
    assert!(past.payloads.is_empty());

    // A flipped byte in record 3, below the index asked for.
    let rec3 = FILE_HEADER_LEN as usize
        + payloads[..3]
            .iter()
            .map(|p| RECORD_HEADER_LEN + p.len())
            .sum::<usize>();
    let mut damaged = bytes;
    damaged[rec3 + RECORD_HEADER_LEN + 5] ^= 0xff;
    fs::write(log_path(dir.path()), &damaged).unwrap();
    let (log, replay) = FileLog::open_from(dir.path(), LogOptions::default(), 6).unwrap();
    assert_eq!((replay.first, replay.records), (3, 3));
    assert!(replay.payloads.is_empty());
    assert_eq!(
        log.recovery().truncation.as_ref().map(|t| t.damage),
        Some(TailDamage::BadChecksum)
    );
}
