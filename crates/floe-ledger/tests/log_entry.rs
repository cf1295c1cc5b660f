//! The log entry encoding is versioned: `0xF1 ‖ version ‖ BCS(LogEntry)`; entries of the
//! unversioned format and of unknown versions are refused with a reason.

use floe_ledger::{EntryDecodeError, LOG_ENTRY_VERSION, LogEntry};

#[test]
fn entries_round_trip_with_their_version_and_old_formats_are_refused() {
    let entry = LogEntry::Clock { now_ms: 42 };
    let bytes = entry.to_bytes();
    assert_eq!(bytes[..2], [0xF1, LOG_ENTRY_VERSION]);
    assert_eq!(LogEntry::from_bytes(&bytes).unwrap(), entry);

    // Before versioning an entry was its bare BCS: variant index 1 (Clock), then u64 LE.
    let mut unversioned = vec![1u8];
    unversioned.extend(42u64.to_le_bytes());
    let err = LogEntry::from_bytes(&unversioned).unwrap_err();
    assert_eq!(err, EntryDecodeError::Unversioned);
    assert!(err.to_string().contains("fresh data directory"), "{err}");

    let mut future = bytes.clone();
    future[1] = LOG_ENTRY_VERSION + 1;
    assert_eq!(
        LogEntry::from_bytes(&future).unwrap_err(),
        EntryDecodeError::Version(LOG_ENTRY_VERSION + 1)
    );
    let mut truncated = bytes;
    truncated.truncate(5);
    assert!(matches!(
        LogEntry::from_bytes(&truncated),
        Err(EntryDecodeError::Decode(_))
    ));
}
