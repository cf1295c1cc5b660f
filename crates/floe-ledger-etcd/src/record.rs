//! The versioned, hash-chained record stored under `log/<seq>` and the chain check a follower
//! runs on every record before it hands it on.

use serde::{Deserialize, Serialize};

/// The record format this build writes (and the only one it reads).
pub const RECORD_VERSION: u8 = 1;

/// One log record. Stored as BCS; the first field is the format version, so a later layout
/// gets a new version rather than reinterpreting old bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_VERSION`].
    pub version: u8,
    /// Position in the log, from 0.
    pub seq: u64,
    /// The hash of record `seq − 1` (for record 0, the chain seed: a hash of the genesis).
    pub prev_hash: [u8; 32],
    /// The ledger's entry bytes (opaque here).
    #[serde(with = "serde_bytes_vec")]
    pub payload: Vec<u8>,
}

mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Vec::<u8>::deserialize(d)
    }
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("record at key seq {key_seq} cannot be decoded: {reason}")]
    Undecodable { key_seq: u64, reason: String },
    #[error("record {seq} has format version {version}; this build reads {RECORD_VERSION}")]
    Version { seq: u64, version: u8 },
    #[error("record under key {key_seq} says it is record {seq}")]
    KeyMismatch { key_seq: u64, seq: u64 },
    #[error("record {seq} does not chain: its previous hash is not the hash of record {}", seq.wrapping_sub(1))]
    BrokenChain { seq: u64 },
    #[error("expected record {expected}, got {got}")]
    Gap { expected: u64, got: u64 },
}

impl Record {
    /// A version-1 record.
    pub fn new(seq: u64, prev_hash: [u8; 32], payload: Vec<u8>) -> Self {
        Record {
            version: RECORD_VERSION,
            seq,
            prev_hash,
            payload,
        }
    }

    /// The encoded bytes stored in etcd.
    pub fn to_bytes(&self) -> Vec<u8> {
        bcs::to_bytes(self).expect("a record serialises")
    }

    /// Decode the value stored under key `key_seq`, checking the version and the key.
    pub fn decode(key_seq: u64, bytes: &[u8]) -> Result<Self, ChainError> {
        // The version byte comes first; check it before trusting the rest of the layout.
        match bytes.first() {
            Some(&RECORD_VERSION) => {}
            Some(&version) => {
                return Err(ChainError::Version {
                    seq: key_seq,
                    version,
                });
            }
            None => {
                return Err(ChainError::Undecodable {
                    key_seq,
                    reason: "empty value".into(),
                });
            }
        }
        let record: Record = bcs::from_bytes(bytes).map_err(|e| ChainError::Undecodable {
            key_seq,
            reason: e.to_string(),
        })?;
        if record.seq != key_seq {
            return Err(ChainError::KeyMismatch {
                key_seq,
                seq: record.seq,
            });
        }
        Ok(record)
    }

    /// This record's hash, which the next record names as its `prev_hash`.
    pub fn hash(&self) -> [u8; 32] {
        hash_parts(&[b"floe-log-record-v1", &self.to_bytes()])
    }
}

/// Blake2b-256 over the concatenation of `parts`.
pub fn hash_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
    for p in parts {
        state.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// The position a follower has reached: the next sequence number it expects and the hash of
/// the last record it accepted. Every record passes [`Chain::accept`] before it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    pub next_seq: u64,
    pub head: [u8; 32],
}

impl Chain {
    /// A chain at `next_seq` whose last record hashed to `head` (at 0: the chain seed).
    pub fn new(next_seq: u64, head: [u8; 32]) -> Self {
        Chain { next_seq, head }
    }

    /// Accept `record` if it is exactly the next one and names the current head.
    pub fn accept(&mut self, record: &Record) -> Result<(), ChainError> {
        if record.seq != self.next_seq {
            return Err(ChainError::Gap {
                expected: self.next_seq,
                got: record.seq,
            });
        }
        if record.prev_hash != self.head {
            return Err(ChainError::BrokenChain { seq: record.seq });
        }
        self.head = record.hash();
        self.next_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_accepts_in_order_and_refuses_gaps_replays_and_forks() {
        let seed = [7u8; 32];
        let r0 = Record::new(0, seed, b"a".to_vec());
        let r1 = Record::new(1, r0.hash(), b"b".to_vec());
        let r2 = Record::new(2, r1.hash(), b"c".to_vec());
        let mut chain = Chain::new(0, seed);
        assert_eq!(
            chain.accept(&r1),
            Err(ChainError::Gap {
                expected: 0,
                got: 1
            })
        );
        chain.accept(&r0).unwrap();
        // A replayed record (a watch travelling back in time) is refused.
        assert!(matches!(chain.accept(&r0), Err(ChainError::Gap { .. })));
        // A record 1 that names another predecessor is refused.
        let fork = Record::new(1, [0u8; 32], b"b".to_vec());
        assert_eq!(chain.accept(&fork), Err(ChainError::BrokenChain { seq: 1 }));
        chain.accept(&r1).unwrap();
        chain.accept(&r2).unwrap();
        assert_eq!(chain.next_seq, 3);
        assert_eq!(chain.head, r2.hash());
    }

    #[test]
    fn decode_checks_version_and_key() {
        let r = Record::new(5, [1u8; 32], vec![9; 40]);
        let bytes = r.to_bytes();
        assert_eq!(Record::decode(5, &bytes).unwrap(), r);
        assert!(matches!(
            Record::decode(6, &bytes),
            Err(ChainError::KeyMismatch { .. })
        ));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(matches!(
            Record::decode(5, &v2),
            Err(ChainError::Version { version: 2, .. })
        ));
        assert!(Record::decode(5, &bytes[..10]).is_err());
        assert!(Record::decode(5, &[]).is_err());
    }
}
