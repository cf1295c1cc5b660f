//! The log entry encoding is versioned: `0xF1 ‖ version ‖ BCS(LogEntry)`, each entry with the
//! oldest version that can express it; entries of the unversioned format, of unknown versions
//! and of unknown rules are refused with a reason.

use floe_ledger::{EntryDecodeError, LOG_ENTRY_VERSION, LogEntry, RULES_VERSION};

#[test]
fn entries_round_trip_with_their_version_and_old_formats_are_refused() {
    let entry = LogEntry::Clock { now_ms: 42 };
    let bytes = entry.to_bytes();
    assert_eq!(bytes[..2], [0xF1, 1], "a clock entry keeps format 1");
    assert_eq!(LogEntry::from_bytes(&bytes).unwrap(), entry);

    // Before versioning an entry was its bare BCS: variant index 1 (Clock), then u64 LE.
    let mut unversioned = vec![1u8];
    unversioned.extend(42u64.to_le_bytes());
    let err = LogEntry::from_bytes(&unversioned).unwrap_err();
    assert_eq!(err, EntryDecodeError::Unversioned);
    assert!(err.to_string().contains("fresh data directory"), "{err}");

    let mut future = bytes.clone();
    future[1] = LOG_ENTRY_VERSION + 1;
    let err = LogEntry::from_bytes(&future).unwrap_err();
    assert_eq!(err, EntryDecodeError::Version(LOG_ENTRY_VERSION + 1));
    assert!(err.is_from_newer_build() && err.to_string().contains("upgrade"));
    let mut truncated = bytes;
    truncated.truncate(5);
    let err = LogEntry::from_bytes(&truncated).unwrap_err();
    assert!(matches!(err, EntryDecodeError::Decode(_)));
    assert!(!err.is_from_newer_build());
}

#[test]
fn a_rules_entry_is_format_2_and_rules_this_build_lacks_are_refused() {
    let entry = LogEntry::Rules {
        version: RULES_VERSION,
    };
    let bytes = entry.to_bytes();
    assert_eq!(bytes[..2], [0xF1, 2]);
    assert_eq!(LogEntry::from_bytes(&bytes).unwrap(), entry);

    // The same entry under format 1 (which has no rules entry) is not an entry.
    let mut mislabelled = bytes.clone();
    mislabelled[1] = 1;
    assert!(matches!(
        LogEntry::from_bytes(&mislabelled),
        Err(EntryDecodeError::Decode(_))
    ));

    let newer = LogEntry::Rules {
        version: RULES_VERSION + 1,
    };
    let err = LogEntry::from_bytes(&newer.to_bytes()).unwrap_err();
    assert_eq!(err, EntryDecodeError::Rules(RULES_VERSION + 1));
    assert!(err.is_from_newer_build());
    assert!(err.to_string().contains("upgrade this build"), "{err}");
}
