use std::collections::BTreeMap;
use std::sync::Arc;

use floe_core::{BlobId, ObjectId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Value {
    n: u64,
    tags: Vec<String>,
    last: Option<u32>,
}

fn value(i: u64) -> Value {
    Value {
        n: i,
        tags: (0..i % 3).map(|t| format!("t{t}")).collect(),
        last: i.is_multiple_of(2).then_some(i as u32),
    }
}

fn key(i: u64) -> ObjectId {
    ObjectId(floe_core::merkle::blake2b256(&[b"key", &i.to_le_bytes()]))
}

/// A map's BCS encoding after `prefix` bytes, and where each entry ends.
fn encoded(model: &BTreeMap<ObjectId, Value>, prefix: usize) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = vec![0xaa; prefix];
    bytes.extend(bcs::to_bytes(model).unwrap());
    let mut end = prefix + bcs::to_bytes(&vec![0u8; model.len()]).unwrap().len() - model.len();
    let ends = model
        .iter()
        .map(|entry| {
            end += bcs::to_bytes(&entry).unwrap().len();
            end as u64
        })
        .collect();
    (bytes, ends)
}

fn loaded(model: &BTreeMap<ObjectId, Value>) -> LazyMap<ObjectId, Value> {
    // The map's section starts at byte 5 of the buffer; the index counts from there.
    let (section, ends) = encoded(model, 0);
    let mut bytes = vec![0xbb; 5];
    bytes.extend(&section);
    let (map, end) = LazyMap::from_encoded(Arc::new(bytes), 5, 0, ends, Layout::Pairs).unwrap();
    assert_eq!(end, section.len());
    map
}

fn encoding(map: &LazyMap<ObjectId, Value>) -> (Vec<u8>, Vec<u64>) {
    let (mut out, mut ends) = (Vec::new(), Vec::new());
    map.encode_into(&mut out, &mut ends);
    (out, ends)
}

#[test]
fn a_loaded_map_reads_back_decodes_only_what_is_read_and_encodes_as_a_btreemap() {
    let model: BTreeMap<_, _> = (0..300).map(|i| (key(i), value(i))).collect();
    let map = loaded(&model);
    assert_eq!(map.len(), 300);
    assert_eq!(map.undecoded(), 300);
    assert_eq!(map.get(&key(7)), Some(&value(7)));
    assert_eq!(map.get(&key(1000)), None);
    assert!(map.contains_key(&key(8)) && !map.contains_key(&key(1000)));
    assert_eq!(map.undecoded(), 299, "only the entry read was decoded");
    // Its encoding is the map's, copied, with the same ends.
    assert_eq!(encoding(&map), encoded(&model, 0));
    assert_eq!(
        map.undecoded(),
        299,
        "encoding copies entries, it does not decode them"
    );
    assert!(map.iter().eq(model.iter()));
    assert_eq!(map, LazyMap::from_entries(model.clone(), Layout::Pairs));
    assert_eq!(bcs::to_bytes(&map).unwrap(), bcs::to_bytes(&model).unwrap());
    let back: LazyMap<ObjectId, Value> = bcs::from_bytes(&bcs::to_bytes(&map).unwrap()).unwrap();
    assert_eq!(back, map);
    assert_eq!(
        serde_json::to_value(&map).unwrap(),
        serde_json::to_value(&model).unwrap()
    );
}

#[test]
fn changes_over_a_loaded_map_behave_as_a_btreemap() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Over two chunks of decoded cells (`CHUNK`), with keys both in the base and not.
    let mut model: BTreeMap<_, _> = (0..600).map(|i| (key(i), value(i))).collect();
    let mut map = loaded(&model);
    for step in 0..3000 {
        let k = key(rng.random_range(0..660));
        match rng.random_range(0..6) {
            0 => {
                let v = value(rng.random_range(0..1000));
                assert_eq!(map.insert(k, v.clone()), model.insert(k, v), "step {step}");
            }
            1 => assert_eq!(map.remove(&k), model.remove(&k), "step {step}"),
            2 => {
                let n = rng.random_range(0..1000);
                if let Some(v) = map.get_mut(&k) {
                    v.n = n;
                }
                if let Some(v) = model.get_mut(&k) {
                    v.n = n;
                }
            }
            3 => {
                map.get_or_default(k).tags.push("x".into());
                model.entry(k).or_default().tags.push("x".into());
            }
            4 => assert_eq!(map.get(&k), model.get(&k), "step {step}"),
            _ => assert_eq!(map.contains_key(&k), model.contains_key(&k)),
        }
        assert_eq!(map.len(), model.len(), "step {step}");
        if step % 97 == 0 {
            assert!(map.iter().eq(model.iter()), "step {step}");
            assert_eq!(encoding(&map), encoded(&model, 0), "step {step}");
        }
    }
    assert!(map.iter().eq(model.iter()));
    assert_eq!(encoding(&map), encoded(&model, 0));
    // An encoding of the changed map loads again.
    let (bytes, ends) = encoding(&map);
    let (again, _) =
        LazyMap::<ObjectId, Value>::from_encoded(Arc::new(bytes), 0, 0, ends, Layout::Pairs)
            .unwrap();
    assert!(again.iter().eq(model.iter()));
}

#[test]
fn records_keyed_by_their_first_field_load_lazily() {
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Record {
        id: BlobId,
        body: Vec<u8>,
    }
    let mut records: Vec<Record> = (0..50u64)
        .map(|i| Record {
            id: BlobId(*key(i).as_bytes()),
            body: vec![i as u8; i as usize],
        })
        .collect();
    records.sort_by_key(|r| r.id);
    let bytes = bcs::to_bytes(&records).unwrap();
    let mut end = 1;
    let ends: Vec<u64> = records
        .iter()
        .map(|r| {
            end += bcs::to_bytes(r).unwrap().len();
            end as u64
        })
        .collect();
    let (mut map, _) = LazyMap::<BlobId, Record>::from_encoded(
        Arc::new(bytes.clone()),
        0,
        0,
        ends.clone(),
        Layout::Records,
    )
    .unwrap();
    assert_eq!(map.get(&records[3].id), Some(&records[3]));
    let (mut out, mut out_ends) = (Vec::new(), Vec::new());
    map.encode_into(&mut out, &mut out_ends);
    assert_eq!((out, out_ends), (bytes, ends));
    let extra = Record {
        id: BlobId([0; 32]),
        body: vec![1],
    };
    map.get_or_insert_with(extra.id, || extra.clone());
    records.insert(0, extra);
    assert_eq!(
        bcs::to_bytes(&map).unwrap(),
        bcs::to_bytes(&records).unwrap()
    );
}

#[test]
fn malformed_indexes_are_refused() {
    let model: BTreeMap<_, _> = (0..4).map(|i| (key(i), value(i))).collect();
    let (bytes, ends) = encoded(&model, 0);
    let bytes = Arc::new(bytes);
    let load = |ends: &[u64]| {
        LazyMap::<ObjectId, Value>::from_encoded(bytes.clone(), 0, 0, ends.to_vec(), Layout::Pairs)
            .map(|_| ())
    };
    assert_eq!(load(&ends), Ok(()));
    assert!(matches!(
        load(&ends[..3]),
        Err(EncodedMapError::CountMismatch {
            counted: 4,
            indexed: 3
        })
    ));
    let mut past = ends.clone();
    past[3] = bytes.len() as u64 + 1;
    assert!(matches!(
        load(&past),
        Err(EncodedMapError::Bounds { index: 3, .. })
    ));
    let mut short = ends.clone();
    short[1] = short[0] + 10;
    assert!(matches!(
        load(&short),
        Err(EncodedMapError::Bounds { .. }) | Err(EncodedMapError::Order(_))
    ));
    // The same entries out of order.
    let swapped: Vec<u8> = {
        let first = (1, ends[0] as usize);
        let second = (ends[0] as usize, ends[1] as usize);
        let mut b = bytes[..1].to_vec();
        b.extend(&bytes[second.0..second.1]);
        b.extend(&bytes[first.0..first.1]);
        b.extend(&bytes[ends[1] as usize..]);
        b
    };
    let len0 = ends[1] - ends[0];
    let swapped_ends = [1 + len0, ends[1], ends[2], ends[3]];
    assert_eq!(
        LazyMap::<ObjectId, Value>::from_encoded(
            Arc::new(swapped),
            0,
            0,
            swapped_ends.to_vec(),
            Layout::Pairs
        )
        .map(|_| ()),
        Err(EncodedMapError::Order(1))
    );
    assert_eq!(
        LazyMap::<ObjectId, Value>::from_encoded(
            Arc::new(vec![0x80]),
            0,
            0,
            Vec::new(),
            Layout::Pairs
        )
        .map(|_| ()),
        Err(EncodedMapError::Count(0))
    );
}

#[test]
fn lengths_are_written_and_read_as_bcs_does() {
    for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 2_000_000] {
        let bcs_len = bcs::to_bytes(&vec![(); n]).unwrap();
        let mut ours = Vec::new();
        write_uleb(&mut ours, n);
        assert_eq!(ours, bcs_len, "{n}");
        assert_eq!(read_uleb(&ours), Some((n, ours.len())));
    }
    assert_eq!(read_uleb(&[0x80, 0x00]), None, "not minimal");
    assert_eq!(
        read_uleb(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
        None,
        "above 2^31 - 1"
    );
}
