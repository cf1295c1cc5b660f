//! FileLog's segment files: roll-over, reads across files, pruning, and recovery of the
//! directory's odd states (an interrupted roll-over, damage in a sealed file, a missing file).

use std::fs;
use std::path::{Path, PathBuf};

use floe_log::format::{FILE_HEADER_LEN, LOG_FILE_NAME, sealed_segment_name};
use floe_log::{CommitterOptions, DurableLog, FileLog, GroupCommitter, LogError, LogOptions};

/// Segments of about 2 KiB: the 120 sample records below fill several.
fn small() -> LogOptions {
    LogOptions {
        segment_bytes: 2048,
        ..LogOptions::default()
    }
}

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..(i * 13) % 90 + 1).map(|j| (i * 7 + j) as u8).collect())
        .collect()
}

/// A log of `n` records appended in batches of up to 3; returns the payloads.
fn build(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let all = payloads(n);
    let (mut log, replay) = FileLog::open(dir, small()).unwrap();
    assert!(replay.is_empty());
    for batch in all.chunks(3) {
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        log.append_durable(&refs).unwrap();
    }
    all
}

/// The sealed segment files, by first index.
fn sealed(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let first = name
                .strip_prefix("ledger-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((first, e.path()))
        })
        .collect();
    out.sort();
    out
}

fn header_version_and_first(path: &Path) -> (u32, Option<u64>) {
    let bytes = fs::read(path).unwrap();
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let first = (version == 2).then(|| u64::from_le_bytes(bytes[16..24].try_into().unwrap()));
    (version, first)
}

#[test]
fn rolls_over_and_reads_across_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path(), 120);
    let files = sealed(dir.path());
    assert!(files.len() >= 3, "120 records in 2 KiB segments: {files:?}");
    assert_eq!(files[0].0, 0);
    // The first file keeps version 1 (what older builds wrote); later ones say where they start.
    assert_eq!(header_version_and_first(&files[0].1), (1, None));
    for (first, path) in &files[1..] {
        assert_eq!(header_version_and_first(path), (2, Some(*first)));
    }
    let active = dir.path().join(LOG_FILE_NAME);
    let (version, active_first) = header_version_and_first(&active);
    assert_eq!(
        version, 2,
        "an older build must refuse a log that rolled over"
    );
    assert!(active_first.unwrap() > files.last().unwrap().0);

    let (log, replay) = FileLog::open(dir.path(), small()).unwrap();
    assert_eq!(replay, all);
    assert_eq!(log.len(), 120);
    assert_eq!(log.first_index(), 0);
    assert_eq!(log.segment_count(), files.len() + 1);
    assert_eq!(log.read_range(0, 120).unwrap(), all);
    // A range that starts in one file and ends in another.
    let cut = active_first.unwrap();
    assert_eq!(
        log.read_range(cut - 2, cut + 2).unwrap(),
        &all[cut as usize - 2..cut as usize + 2]
    );
    let on_disk: u64 = files
        .iter()
        .map(|(_, p)| fs::metadata(p).unwrap().len())
        .sum::<u64>()
        + fs::metadata(&active).unwrap().len();
    assert_eq!(log.byte_len(), on_disk);
}

#[test]
fn prune_deletes_whole_sealed_files_and_reads_before_them_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path(), 120);
    let files = sealed(dir.path());
    let (mut log, _) = FileLog::open(dir.path(), small()).unwrap();
    // Up to a point inside the second file: only the first is wholly before it.
    let target = files[1].0 + 1;
    assert_eq!(log.prune_before(target).unwrap(), files[1].0);
    assert!(!files[0].1.exists());
    assert!(files[1].1.exists());
    assert_eq!(log.first_index(), files[1].0);
    match log.read_range(0, 5) {
        Err(LogError::Pruned { from: 0, first }) => assert_eq!(first, files[1].0),
        other => panic!("expected Pruned, got {other:?}"),
    }
    assert_eq!(
        log.read_range(files[1].0, 120).unwrap(),
        &all[files[1].0 as usize..]
    );
    // Past the end: every sealed file goes, the one appended to stays.
    let active_first = log.prune_before(u64::MAX).unwrap();
    assert!(sealed(dir.path()).is_empty());
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.len(), 120);
    let mut log = log;
    log.append_durable(&[b"after"]).unwrap();
    drop(log);

    // A reopen starts where the log now starts, whatever was asked for.
    let (log, replay) = FileLog::open_from(dir.path(), small(), 0).unwrap();
    assert_eq!(log.first_index(), active_first);
    assert_eq!(replay.first, active_first);
    assert_eq!(replay.records, 121);
    assert_eq!(
        replay.payloads[..replay.payloads.len() - 1],
        all[active_first as usize..]
    );
    assert_eq!(replay.payloads.last().unwrap(), b"after");
}

#[test]
fn open_from_leaves_earlier_files_unread_and_a_later_read_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path(), 120);
    let files = sealed(dir.path());
    // Damage a payload byte of the first sealed file (its last record).
    let mut bytes = fs::read(&files[0].1).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&files[0].1, &bytes).unwrap();

    let keep_from = files.last().unwrap().0;
    let (log, replay) = FileLog::open_from(dir.path(), small(), keep_from).unwrap();
    assert_eq!(replay.first, keep_from);
    assert_eq!(replay.payloads, &all[keep_from as usize..]);
    assert_eq!(
        log.read_range(files[1].0, files[1].0 + 2).unwrap(),
        &all[files[1].0 as usize..files[1].0 as usize + 2]
    );
    match log.read_range(0, 2) {
        Err(LogError::Corrupt { path, .. }) => assert_eq!(path, files[0].1),
        other => panic!("a read of the damaged file must fail, got {other:?}"),
    }
    drop(log);

    // Opening from the start reads it: damage inside a sealed file is a hard error, never a
    // silent cut (the file was durable before the next one began).
    match FileLog::open(dir.path(), small()) {
        Err(LogError::Corrupt { path, reason, .. }) => {
            assert_eq!(path, files[0].1);
            assert!(reason.contains("sealed"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(fs::read(&files[0].1).unwrap(), bytes, "nothing was cut");
}

#[test]
fn an_interrupted_roll_over_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path(), 120);
    let active = dir.path().join(LOG_FILE_NAME);
    let (_, active_first) = header_version_and_first(&active);
    // The state between the roll-over's link and its rename: the file appended to has its
    // sealed name too, and the next file waits under a temporary name.
    let link = dir.path().join(sealed_segment_name(active_first.unwrap()));
    fs::hard_link(&active, &link).unwrap();
    fs::write(
        dir.path().join(format!("{LOG_FILE_NAME}.next")),
        b"FLOELOG\0",
    )
    .unwrap();

    let (mut log, replay) = FileLog::open(dir.path(), small()).unwrap();
    assert_eq!(replay, all);
    assert!(!link.exists(), "the extra link is removed");
    // And the log keeps rolling over: the temporary file is simply replaced.
    for p in payloads(60) {
        log.append_durable(&[&p]).unwrap();
    }
    drop(log);
    let (_, replay) = FileLog::open(dir.path(), small()).unwrap();
    assert_eq!(replay.len(), 180);
}

#[test]
fn odd_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 120);
    let files = sealed(dir.path());
    let active = dir.path().join(LOG_FILE_NAME);

    // ledger.log gone while sealed files exist: the newest records are lost; say so.
    let saved = dir.path().join("saved.log");
    fs::rename(&active, &saved).unwrap();
    match FileLog::open(dir.path(), small()) {
        Err(e @ LogError::BadHeader { .. }) => assert!(e.to_string().contains("missing"), "{e}"),
        other => panic!("expected BadHeader, got {other:?}"),
    }
    assert!(!active.exists(), "no empty log is created over the gap");
    fs::rename(&saved, &active).unwrap();

    // A sealed file whose name and header disagree.
    let wrong = dir.path().join(sealed_segment_name(files[1].0 + 1));
    fs::rename(&files[1].1, &wrong).unwrap();
    match FileLog::open(dir.path(), small()) {
        Err(e @ LogError::BadHeader { .. }) => assert!(e.to_string().contains("file name"), "{e}"),
        other => panic!("expected BadHeader, got {other:?}"),
    }
}

#[test]
fn a_second_open_is_refused_across_roll_overs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = FileLog::open(dir.path(), small()).unwrap();
    for p in payloads(60) {
        log.append_durable(&[&p]).unwrap();
    }
    assert!(log.segment_count() > 1);
    assert!(matches!(
        FileLog::open(dir.path(), small()),
        Err(LogError::Locked { .. })
    ));
    drop(log);
    assert_eq!(FileLog::open(dir.path(), small()).unwrap().1.len(), 60);
}

#[tokio::test]
async fn the_committer_prunes_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = FileLog::open(dir.path(), small()).unwrap();
    let committer = GroupCommitter::spawn(Box::new(log), CommitterOptions::default()).unwrap();
    let pruner = committer.pruner();
    for p in payloads(120) {
        committer.submit(p).await.unwrap();
    }
    pruner.prune_before(100);
    // A prune asked for while idle happens without waiting for another record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sealed(dir.path())
        .first()
        .is_some_and(|(first, _)| *first == 0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the prune never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let log = committer.shutdown().await.unwrap();
    assert!(log.first_index() > 0 && log.first_index() <= 100);
    assert_eq!(log.len(), 120);
    assert_eq!(log.read_range(100, 120).unwrap(), &payloads(120)[100..]);
    assert!(fs::metadata(dir.path().join(LOG_FILE_NAME)).unwrap().len() > FILE_HEADER_LEN);
}
