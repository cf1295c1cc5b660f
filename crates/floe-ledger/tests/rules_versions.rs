//! Versioned ledger rules: a genesis names its rules, a `Rules` entry steps a running ledger
//! up, and every entry is judged by the rules in force at its position, so old logs replay to
//! the same state. Version 2 makes network keys unique at registration and genesis.

mod common;

use common::{Net, genesis_config, seed};
use floe_crypto::{NetworkPublicKey, ProofOfPossession, ProtocolKeyPair};
use floe_ledger::{
    AccountKey, GenesisConfig, GenesisError, LedgerState, LogEntry, RULES_VERSION, TxError, TxKind,
};

/// A valid secp256r1 point (bytes 2 and 3 give one; not every byte does).
fn key(byte: u8) -> NetworkPublicKey {
    NetworkPublicKey::from_bytes(&[byte; 33]).unwrap()
}

/// A registration of a new node `name` (its BLS key from `seed`) carrying `network_key`.
fn registration(name: &str, i: u64, op: &AccountKey, network_key: NetworkPublicKey) -> TxKind {
    let bls = ProtocolKeyPair::from_seed(&seed("new-bls", i));
    TxKind::RegisterNode {
        name: name.into(),
        network_address: "127.0.0.1:1".into(),
        protocol_key: *bls.public_key(),
        proof_of_possession: ProofOfPossession::create(&bls, 0, &op.address().0),
        capacity: 1 << 40,
        weight: 1,
        network_public_key: Some(network_key),
    }
}

/// A 4-node network under `rules`, whose first node holds network key `key(2)`.
fn net_under(rules: u16) -> Net {
    let (mut config, keys, ops) = genesis_config(4, 100, 1 << 40);
    config.rules = rules;
    let mut net = Net::from_genesis(&config, keys, ops);
    let id = net.state.committee().members[0].node_id;
    let owner = net.operators[0].clone();
    net.submit(
        &owner,
        TxKind::SetNetworkKey {
            node_id: id,
            network_public_key: key(2),
        },
    )
    .unwrap();
    net
}

#[test]
fn new_ledgers_refuse_a_registration_that_reuses_a_network_key() {
    let mut net = net_under(RULES_VERSION);
    assert_eq!(net.state.rules(), RULES_VERSION);
    assert!(!net.state.rules_behind());
    let op = AccountKey::from_seed(&seed("new-op", 0));
    let err = net
        .submit(&op, registration("dup", 0, &op, key(2)))
        .unwrap_err();
    assert_eq!(err.code(), "BAD_NODE");
    assert!(
        err.to_string().contains("network key already used"),
        "{err}"
    );
    net.submit(&op, registration("fresh", 1, &op, key(3)))
        .unwrap();
}

#[test]
fn an_old_log_replays_as_before_and_its_rules_entry_steps_it_up() {
    let mut net = net_under(1);
    assert!(net.state.rules_behind());
    let op = AccountKey::from_seed(&seed("new-op", 0));
    // Under rules 1 a reused key was accepted; replay must accept it again.
    net.submit(&op, registration("dup-v1", 0, &op, key(2)))
        .unwrap();

    let events = net
        .apply(LogEntry::Rules {
            version: RULES_VERSION,
        })
        .unwrap();
    assert!(events.is_empty(), "a rules step emits no event");
    assert_eq!(net.state.rules(), RULES_VERSION);
    let err = net
        .submit(&op, registration("dup-v2", 1, &op, key(2)))
        .unwrap_err();
    assert!(
        err.to_string().contains("network key already used"),
        "{err}"
    );

    // A second step (another replica's) and unknown rules change nothing.
    let hash = net.state.state_hash();
    let again = LogEntry::Rules {
        version: RULES_VERSION,
    };
    assert!(matches!(
        net.state.apply(&again),
        Err(TxError::RulesNotNewer { .. })
    ));
    let unknown = LogEntry::Rules {
        version: RULES_VERSION + 1,
    };
    assert_eq!(
        net.state.apply(&unknown).unwrap_err().code(),
        "UNKNOWN_RULES"
    );
    assert_eq!(net.state.state_hash(), hash);

    // The log (accepted entries only) replays to the same state, digest included.
    let (mut config, _, _) = genesis_config(4, 100, 1 << 40);
    config.rules = 1;
    let mut replayed = LedgerState::genesis(&config).unwrap();
    for entry in &net.log {
        replayed.apply(entry).unwrap();
    }
    assert_eq!(replayed.state_hash(), net.state.state_hash());
    assert_eq!(replayed.digest(), net.state.digest());
}

#[test]
fn a_genesis_names_its_rules_and_refuses_reused_network_keys_from_rules_2() {
    let (config, _, _) = genesis_config(2, 10, 1 << 40);
    assert_eq!(
        config.rules, RULES_VERSION,
        "new genesis files take the newest rules"
    );
    let with_keys = |rules: u16| GenesisConfig {
        rules,
        nodes: config
            .nodes
            .iter()
            .cloned()
            .map(|n| n.with_network_key(Some(key(2))))
            .collect(),
        ..config.clone()
    };
    match LedgerState::genesis(&with_keys(RULES_VERSION)) {
        Err(GenesisError::Node { reason, .. }) => {
            assert!(reason.contains("network key already used"), "{reason}")
        }
        other => panic!("a shared network key at genesis: {other:?}"),
    }
    assert_eq!(
        LedgerState::genesis(&with_keys(1)).unwrap().rules(),
        1,
        "rules 1 took such a genesis"
    );
    let err = LedgerState::genesis(&GenesisConfig {
        rules: RULES_VERSION + 1,
        ..config.clone()
    })
    .unwrap_err();
    assert_eq!(err, GenesisError::Rules(RULES_VERSION + 1));
    assert!(err.to_string().contains("upgrade this build"), "{err}");
}

#[test]
fn genesis_files_without_rules_are_rules_1_and_keep_their_bytes() {
    let (config, _, _) = genesis_config(2, 10, 1 << 40);
    let v1 = GenesisConfig { rules: 1, ..config };
    let json = serde_json::to_value(&v1).unwrap();
    assert!(
        json.get("rules").is_none(),
        "rules 1 is written as before: {json}"
    );
    let read: GenesisConfig = serde_json::from_value(json).unwrap();
    assert_eq!(read.rules, 1);
    let v2 = GenesisConfig {
        rules: RULES_VERSION,
        ..v1.clone()
    };
    let json = serde_json::to_value(&v2).unwrap();
    assert_eq!(json["rules"], RULES_VERSION);
    assert_ne!(
        LedgerState::genesis(&v1).unwrap().digest(),
        LedgerState::genesis(&v2).unwrap().digest(),
        "the rules are part of the genesis digest"
    );
}
