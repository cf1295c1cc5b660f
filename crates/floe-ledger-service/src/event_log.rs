//! Every event so far, kept in its BCS encoding.
//!
//! The events are history: nodes read them by cursor, the status routes look one up by index,
//! and nothing else touches them. Kept encoded (each event once, as it is applied), they cost
//! their encoded size in memory instead of a heap object each, a snapshot writes them with one
//! copy instead of serialising them all again under the state lock, and a restart takes them
//! from the snapshot without decoding them. A read decodes only the events it returns.

use floe_ledger::Event;

/// The events, encoded back to back, with where each one ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventLog {
    /// The BCS encodings of the events, concatenated (BCS `Vec<Event>` without its length).
    bytes: Vec<u8>,
    /// `ends[i]`: the end of event `i` in `bytes`.
    ends: Vec<u64>,
}

/// Encoded events that do not hold together.
#[derive(Debug, thiserror::Error)]
#[error("event log: {0}")]
pub struct EventLogError(String);

impl EventLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// From events as they were decoded (an older snapshot).
    pub fn from_events(events: &[Event]) -> Self {
        let mut log = Self::new();
        log.extend(events);
        log
    }

    /// From the encoded events and their end offsets, checked to fit together (ascending,
    /// within the bytes, the last at their end). Each event's bytes are decoded only when read.
    pub fn from_parts(bytes: Vec<u8>, ends: Vec<u64>) -> Result<Self, EventLogError> {
        let mut previous = 0u64;
        for (i, &end) in ends.iter().enumerate() {
            if end <= previous {
                return Err(EventLogError(format!(
                    "event {i} ends at {end}, not after {previous}"
                )));
            }
            previous = end;
        }
        if previous != bytes.len() as u64 {
            return Err(EventLogError(format!(
                "{} bytes of events, but the last one ends at {previous}",
                bytes.len()
            )));
        }
        Ok(Self { bytes, ends })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, event: &Event) {
        // BCS writes an event into a Vec without failing; skipping one would shift every
        // later event's index, so a failure is a bug to stop at, like the other encodings.
        bcs::serialize_into(&mut self.bytes, event).expect("an event serialises");
        self.ends.push(self.bytes.len() as u64);
    }

    pub fn extend(&mut self, events: &[Event]) {
        for e in events {
            self.push(e);
        }
    }

    /// Append `later`'s events after these.
    pub fn append(&mut self, later: EventLog) {
        let offset = self.bytes.len() as u64;
        if self.bytes.is_empty() {
            self.bytes = later.bytes;
        } else {
            self.bytes.extend_from_slice(&later.bytes);
        }
        self.ends.extend(later.ends.iter().map(|e| e + offset));
    }

    /// Where event `i` starts in the bytes (`i` at most the number of events).
    fn start_of(&self, i: usize) -> u64 {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }

    /// The encoded bytes of event `i`.
    fn encoded(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        self.bytes.get(self.start_of(i) as usize..end)
    }

    /// Event `i`, decoded; `None` past the end, or if its bytes (from a snapshot) do not
    /// decode, which is logged.
    pub fn get(&self, i: usize) -> Option<Event> {
        let bytes = self.encoded(i)?;
        match bcs::from_bytes(bytes) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::error!(index = i, error = %e, "a stored event does not decode");
                None
            }
        }
    }

    /// Events `start..end` (clamped to those held), decoded; stops before one that does not
    /// decode.
    pub fn range(&self, start: usize, end: usize) -> Vec<Event> {
        (start..end.min(self.len()))
            .map_while(|i| self.get(i))
            .collect()
    }

    /// Events `start..end` (clamped to those held) as a log of their own: a copy of their
    /// bytes, cheap to take under a lock and decode once it is released.
    pub fn slice(&self, start: usize, end: usize) -> EventLog {
        let end = end.min(self.len());
        let start = start.min(end);
        let (from, to) = (self.start_of(start), self.start_of(end));
        EventLog {
            bytes: self.bytes[from as usize..to as usize].to_vec(),
            ends: self.ends[start..end].iter().map(|e| e - from).collect(),
        }
    }

    /// Every event, decoded.
    pub fn to_vec(&self) -> Vec<Event> {
        self.range(0, self.len())
    }

    /// The events' encodings, concatenated.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where each event ends in [`Self::bytes`].
    pub fn ends(&self) -> &[u64] {
        &self.ends
    }
}

#[cfg(test)]
mod tests {
    use floe_core::{BlobId, ObjectId};
    use floe_ledger::EventKind;

    use super::*;

    fn event(i: u64) -> Event {
        Event {
            index: i,
            entry_index: i / 2,
            epoch: i as u32,
            tx_digest: floe_core::TxDigest([i as u8; 32]),
            kind: EventKind::BlobDeleted {
                blob_id: BlobId([i as u8; 32]),
                object_id: ObjectId([7; 32]),
                end_epoch: 9,
                was_certified: i.is_multiple_of(2),
            },
        }
    }

    #[test]
    fn events_read_back_and_encode_as_bcs_does() {
        let events: Vec<Event> = (0..50).map(event).collect();
        let log = EventLog::from_events(&events);
        assert_eq!(log.len(), 50);
        assert_eq!(log.to_vec(), events);
        assert_eq!(log.get(49), Some(events[49].clone()));
        assert_eq!(log.get(50), None);
        assert_eq!(log.range(10, 13), events[10..13].to_vec());
        assert_eq!(log.range(48, 1000), events[48..].to_vec());
        assert!(log.range(60, 70).is_empty());
        for (a, b) in [
            (0, 50),
            (10, 13),
            (48, 1000),
            (0, 0),
            (7, 7),
            (60, 70),
            (50, 50),
        ] {
            assert_eq!(log.slice(a, b).to_vec(), log.range(a, b), "slice {a}..{b}");
        }
        // The bytes are BCS `Vec<Event>` after its length.
        let bcs_vec = bcs::to_bytes(&events).unwrap();
        assert_eq!(&bcs_vec[1..], log.bytes());
        let again = EventLog::from_parts(log.bytes().to_vec(), log.ends().to_vec()).unwrap();
        assert_eq!(again, log);
        // Joining two logs gives the log of all their events.
        for split in [0, 1, 25, 50] {
            let mut joined = EventLog::from_events(&events[..split]);
            joined.append(EventLog::from_events(&events[split..]));
            assert_eq!(joined, log, "joined at {split}");
        }
    }

    #[test]
    fn parts_that_do_not_fit_are_refused() {
        let log = EventLog::from_events(&[event(1), event(2)]);
        let (bytes, ends) = (log.bytes().to_vec(), log.ends().to_vec());
        assert!(EventLog::from_parts(bytes[1..].to_vec(), ends.clone()).is_err());
        assert!(EventLog::from_parts(bytes.clone(), vec![ends[1], ends[0]]).is_err());
        assert!(EventLog::from_parts(bytes.clone(), vec![ends[0]]).is_err());
        assert!(
            EventLog::from_parts(Vec::new(), Vec::new())
                .unwrap()
                .is_empty()
        );
        // Bytes that fit the offsets but not an event: the read says so instead of panicking.
        let garbage = EventLog::from_parts(vec![0xFF; 8], vec![8]).unwrap();
        assert_eq!(garbage.get(0), None);
    }
}
