//! Blob attributes: only the owner sets or removes them, on a live object; they are bounded,
//! emit no event, and a refused transaction changes nothing.

mod common;

use common::{Net, seed};
use floe_ledger::{AccountKey, TxError, TxKind};

fn alice() -> AccountKey {
    AccountKey::from_seed(&seed("alice", 0))
}
fn bob() -> AccountKey {
    AccountKey::from_seed(&seed("bob", 0))
}

fn set(
    net: &mut Net,
    who: &AccountKey,
    object: floe_core::ObjectId,
    pairs: &[(&str, &str)],
) -> Result<Vec<floe_ledger::Event>, TxError> {
    net.submit(
        who,
        TxKind::SetBlobAttributes {
            blob_object: object,
            attributes: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    )
}

#[test]
fn owners_set_and_remove_attributes_within_bounds() {
    let mut net = Net::new(7, 70);
    let (a, b) = (alice(), bob());
    let (blob_id, obj) = net.register(&a, b"with attributes", 5, true).unwrap();
    net.certify(&a, blob_id, obj, true).unwrap();
    let attributes = |net: &Net| net.state.blob_object(&obj).unwrap().attributes.clone();

    let hash = net.state.state_hash();
    assert_eq!(
        set(&mut net, &b, obj, &[("content-type", "text/html")]).unwrap_err(),
        TxError::NotOwner(obj)
    );
    assert!(matches!(
        set(&mut net, &a, obj, &[]).unwrap_err(),
        TxError::BadAttributes(_)
    ));
    assert!(matches!(
        set(&mut net, &a, obj, &[("", "x")]).unwrap_err(),
        TxError::BadAttributes(_)
    ));
    let big = "v".repeat(20_000);
    assert!(matches!(
        set(&mut net, &a, obj, &[("k", &big)]).unwrap_err(),
        TxError::BadAttributes(_)
    ));
    assert_eq!(net.state.state_hash(), hash, "refusals change nothing");

    let events = set(
        &mut net,
        &a,
        obj,
        &[("content-type", "text/html"), ("_walrusBlobType", "quilt")],
    )
    .unwrap();
    assert!(events.is_empty());
    assert_ne!(net.state.state_hash(), hash);
    assert_eq!(attributes(&net).len(), 2);
    set(&mut net, &a, obj, &[("content-type", "image/png")]).unwrap();
    assert_eq!(attributes(&net)["content-type"], "image/png");

    net.submit(
        &a,
        TxKind::RemoveBlobAttributes {
            blob_object: obj,
            keys: Some(vec!["content-type".into(), "absent".into()]),
        },
    )
    .unwrap();
    assert_eq!(
        attributes(&net).keys().collect::<Vec<_>>(),
        ["_walrusBlobType"]
    );
    assert_eq!(
        net.submit(
            &b,
            TxKind::RemoveBlobAttributes {
                blob_object: obj,
                keys: None
            }
        )
        .unwrap_err(),
        TxError::NotOwner(obj)
    );
    net.submit(
        &a,
        TxKind::RemoveBlobAttributes {
            blob_object: obj,
            keys: None,
        },
    )
    .unwrap();
    assert!(attributes(&net).is_empty());
    // A 65th key is refused.
    let keys: Vec<String> = (0..65).map(|i| format!("k{i}")).collect();
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    assert!(matches!(
        set(&mut net, &a, obj, &pairs).unwrap_err(),
        TxError::BadAttributes(_)
    ));
    // Not on a deleted object.
    net.submit(&a, TxKind::DeleteBlob { blob_object: obj })
        .unwrap();
    assert_eq!(
        set(&mut net, &a, obj, &[("k", "v")]).unwrap_err(),
        TxError::Deleted(obj)
    );
}
