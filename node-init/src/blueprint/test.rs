#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;
use bus::api::node::{SignerKey, Signers, Workload, WorkloadResult, WorkloadState};
use serde_json::json;

pub(crate) fn zdb_deployment(owner: &KeyPair, size: u64) -> Deployment {
    Deployment {
        id: "db1".into(),
        version: 0,
        owner: owner.public_hex(),
        description: None,
        signers: Signers {
            threshold: 1,
            keys: vec![SignerKey {
                key: owner.public_hex(),
                weight: 1,
            }],
        },
        workloads: vec![Workload {
            name: "ns".into(),
            kind: "zdb".into(),
            version: 0,
            description: None,
            data: json!({"size": size, "mode": "user", "password": "s3cret", "public": false}),
            result: None,
        }],
        signatures: vec![],
    }
}

fn key(n: u8) -> KeyPair {
    KeyPair::from_seed([n; 32])
}

#[test]
fn create_signed_by_owner() {
    let k = key(1);
    let mut d = zdb_deployment(&k, 1 << 30);
    validate_deployment(&d).unwrap();
    assert!(matches!(
        check_create(&d),
        Err(BlueprintError::NotEnoughWeight { .. })
    ));
    sign(&mut d, &k).unwrap();
    check_create(&d).unwrap();
    // forged: altered after signing
    let mut forged = d.clone();
    forged.workloads[0].data["size"] = json!(2u64 << 30);
    assert!(matches!(
        check_create(&forged),
        Err(BlueprintError::BadSignature { .. })
    ));
    // wrong signer
    let mut wrong = zdb_deployment(&k, 1 << 30);
    sign(&mut wrong, &key(2)).unwrap();
    assert!(matches!(
        check_create(&wrong),
        Err(BlueprintError::NotEnoughWeight { have: 0, .. })
    ));
}

#[test]
fn owner_must_sign_creation() {
    let (owner, other) = (key(1), key(2));
    let mut d = zdb_deployment(&owner, 1 << 30);
    d.signers.keys[0].key = other.public_hex();
    sign(&mut d, &other).unwrap();
    assert!(matches!(
        check_create(&d),
        Err(BlueprintError::OwnerMustSign)
    ));
}

#[test]
fn hash_ignores_results_and_signatures_only() {
    let k = key(1);
    let mut d = zdb_deployment(&k, 1 << 30);
    let h = deployment_hash(&d).unwrap();
    sign(&mut d, &k).unwrap();
    d.workloads[0].result = Some(WorkloadResult {
        state: WorkloadState::Ok,
        message: String::new(),
        data: json!({"x": 1}),
        updated: 1,
        version: 0,
    });
    assert_eq!(h, deployment_hash(&d).unwrap());
    d.description = Some("x".into());
    assert_ne!(h, deployment_hash(&d).unwrap());
}

#[test]
fn threshold_with_weights() {
    let (a, b, c) = (key(1), key(2), key(3));
    let mut d = zdb_deployment(&a, 1 << 30);
    d.signers = Signers {
        threshold: 3,
        keys: vec![
            SignerKey {
                key: a.public_hex(),
                weight: 2,
            },
            SignerKey {
                key: b.public_hex(),
                weight: 1,
            },
            SignerKey {
                key: c.public_hex(),
                weight: 1,
            },
        ],
    };
    sign(&mut d, &a).unwrap();
    assert!(matches!(
        check_create(&d),
        Err(BlueprintError::NotEnoughWeight {
            have: 2,
            need: 3,
            ..
        })
    ));
    sign(&mut d, &c).unwrap();
    check_create(&d).unwrap();
    // signing twice by the same key replaces, never double counts
    sign(&mut d, &c).unwrap();
    assert_eq!(d.signatures.len(), 2);
}

#[test]
fn update_needs_both_signer_sets_and_next_version() {
    let (a, b) = (key(1), key(2));
    let mut v0 = zdb_deployment(&a, 1 << 30);
    sign(&mut v0, &a).unwrap();
    // v1 hands the deployment to b
    let mut v1 = v0.clone();
    v1.signatures.clear();
    v1.version = 1;
    v1.signers.keys[0].key = b.public_hex();
    sign(&mut v1, &b).unwrap();
    assert!(matches!(
        check_update(&v0, &v1),
        Err(BlueprintError::NotEnoughWeight {
            set: "previous",
            ..
        })
    ));
    sign(&mut v1, &a).unwrap();
    check_update(&v0, &v1).unwrap();
    // replay of v0 over v1, and skipping a version
    assert!(matches!(
        check_update(&v1, &v0),
        Err(BlueprintError::WrongVersion {
            expected: 2,
            got: 0
        })
    ));
    let mut v3 = v1.clone();
    v3.version = 3;
    assert!(matches!(
        check_update(&v1, &v3),
        Err(BlueprintError::WrongVersion { .. })
    ));
}

#[test]
fn update_rules_per_workload() {
    let a = key(1);
    let v0 = zdb_deployment(&a, 1 << 30);
    let mut v1 = v0.clone();
    v1.version = 1;
    // grown but version not bumped
    v1.workloads[0].data["size"] = json!(2u64 << 30);
    assert!(validate_update(Some(&v0), &v1).is_err());
    v1.workloads[0].version = 1;
    let need = validate_update(Some(&v0), &v1).unwrap();
    assert_eq!(need.get(&Pool::Zdb), Some(&(1u64 << 30)));
    // shrink and mode change refused
    let mut shrink = v1.clone();
    shrink.workloads[0].data["size"] = json!(1u64 << 20);
    assert!(matches!(
        validate_update(Some(&v0), &shrink),
        Err(BlueprintError::ImmutableChange { .. })
    ));
    let mut mode = v1.clone();
    mode.workloads[0].data["mode"] = json!("seq");
    assert!(matches!(
        validate_update(Some(&v0), &mode),
        Err(BlueprintError::ImmutableChange { .. })
    ));
    // unchanged workload keeps its version
    let mut same = v0.clone();
    same.version = 1;
    assert_eq!(
        validate_update(Some(&v0), &same).unwrap().get(&Pool::Zdb),
        Some(&0)
    );
}

#[test]
fn static_validation() {
    let a = key(1);
    let ok = zdb_deployment(&a, 1 << 30);
    type Mutation = Box<dyn Fn(&mut Deployment)>;
    let cases: Vec<Mutation> = vec![
        Box::new(|d| d.id = "bad id".into()),
        Box::new(|d| d.id = "x".repeat(37)),
        Box::new(|d| d.workloads[0].name = "a-b".into()),
        Box::new(|d| d.workloads.push(d.workloads[0].clone())),
        Box::new(|d| d.workloads[0].kind = "vm".into()),
        Box::new(|d| d.workloads[0].data["size"] = json!(0)),
        Box::new(|d| d.workloads[0].data["mode"] = json!("fast")),
        Box::new(|d| d.workloads[0].data["extra"] = json!(1)),
        Box::new(|d| d.workloads[0].data["password"] = json!("has space")),
        Box::new(|d| d.workloads[0].data["password"] = json!("x".repeat(64))),
        Box::new(|d| d.workloads[0].version = 1),
        Box::new(|d| d.signers.threshold = 2),
        Box::new(|d| d.signers.threshold = 0),
        Box::new(|d| d.owner = "abc".into()),
        Box::new(|d| d.owner = d.owner.to_uppercase()),
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut d = ok.clone();
        case(&mut d);
        assert!(validate_deployment(&d).is_err(), "case {i} accepted");
    }
    assert!(serde_json::from_value::<Deployment>(json!({"id": "x", "unknown": 1})).is_err());
}

#[test]
fn a_refused_password_is_not_quoted_in_the_error() {
    let a = key(1);
    for (pw, shown) in [
        (json!(31415926), "31415926"),
        (json!("has space"), "has space"),
        (json!(["s3cret-in-a-list"]), "s3cret-in-a-list"),
    ] {
        let mut d = zdb_deployment(&a, 1 << 30);
        d.workloads[0].data["password"] = pw;
        let e = validate_deployment(&d).unwrap_err().to_string();
        assert!(e.contains("password") && !e.contains(shown), "{e}");
    }
}

#[test]
fn redaction_and_delete() {
    let a = key(1);
    let mut d = zdb_deployment(&a, 1 << 30);
    sign(&mut d, &a).unwrap();
    let r = redacted(&d);
    assert_eq!(r.workloads[0].data["password"], json!(REDACTED));
    assert!(!serde_json::to_string(&r).unwrap().contains("s3cret"));
    let h = delete_hash(&d.owner, &d.id, 0).unwrap();
    let mut req = DeleteRequest {
        owner: d.owner.clone(),
        id: d.id.clone(),
        version: 0,
        signatures: vec![],
    };
    assert!(check_delete(&d, &req).is_err());
    add_signature(&mut req.signatures, &h, &key(2));
    assert!(check_delete(&d, &req).is_err());
    req.signatures.clear();
    add_signature(&mut req.signatures, &h, &a);
    check_delete(&d, &req).unwrap();
}

use bus::api::node::DeleteRequest;

fn container_deployment(owner: &KeyPair, memory: u64, mount: &str) -> Deployment {
    let mut d = zdb_deployment(owner, 1 << 30);
    d.workloads = vec![
        Workload {
            name: "data".into(),
            kind: "volume".into(),
            version: 0,
            description: None,
            data: json!({"size": 1u64 << 20}),
            result: None,
        },
        Workload {
            name: "app".into(),
            kind: "container".into(),
            version: 0,
            description: None,
            data: json!({
                "flist": "/f.flist", "identity": "ab".repeat(32), "entrypoint": ["/bin/sh"],
                "memory": memory, "rootfs_size": 2u64 << 20,
                "mounts": [{"volume": mount, "path": "/data"}],
            }),
            result: None,
        },
    ];
    d
}

#[test]
fn container_workloads_reserve_memory_and_mount_only_their_volumes() {
    let k = key(1);
    let d = container_deployment(&k, 64 << 20, "data");
    validate_deployment(&d).unwrap();
    let need = validate_update(None, &d).unwrap();
    assert_eq!(need.get(&Pool::Memory), Some(&(64 << 20)));
    assert_eq!(need.get(&Pool::Volume), Some(&(3 << 20)));
    // a replaced container gives its memory back: only the growth is needed
    let mut v1 = container_deployment(&k, 96 << 20, "data");
    v1.version = 1;
    v1.workloads[1].version = 1;
    let need = validate_update(Some(&d), &v1).unwrap();
    assert_eq!(need.get(&Pool::Memory), Some(&(32 << 20)));
    // a mount must name a volume of the deployment
    for bad in [
        container_deployment(&k, 64 << 20, "nope"),
        container_deployment(&k, 1024, "data"),
    ] {
        assert!(matches!(
            validate_deployment(&bad),
            Err(BlueprintError::InvalidWorkload { .. })
        ));
    }
    let mut no_id = container_deployment(&k, 64 << 20, "data");
    no_id.workloads[1].data["identity"] = json!("short");
    assert!(validate_deployment(&no_id).is_err());
}

#[test]
fn store_workloads_name_a_farm_need_a_password_and_keep_their_farm() {
    let k = key(1);
    let store = |data: serde_json::Value| {
        let mut d = zdb_deployment(&k, 1 << 30);
        d.workloads[0].kind = "store".into();
        d.workloads[0].data = data;
        d
    };
    let ok = store(json!({"farm": "home", "size": 1u64 << 30, "password": "pw"}));
    let need = validate_update(None, &ok).unwrap();
    assert_eq!(need.get(&Pool::Zdb), Some(&(1u64 << 30)));
    assert_eq!(redacted(&ok).workloads[0].data["password"], json!(REDACTED));
    for bad in [
        json!({"farm": "a/b", "size": 1u64 << 30, "password": "pw"}),
        json!({"farm": "home", "size": 1u64 << 30}),
        json!({"farm": "home", "size": 1u64 << 30, "password": "has space"}),
        json!({"farm": "home", "size": 1, "password": "pw"}),
    ] {
        assert!(validate_update(None, &store(bad.clone())).is_err(), "{bad}");
    }
    let mut moved = store(json!({"farm": "other", "size": 1u64 << 30, "password": "pw"}));
    moved.version = 1;
    moved.workloads[0].version = 1;
    assert!(matches!(
        validate_update(Some(&ok), &moved),
        Err(BlueprintError::ImmutableChange { .. })
    ));
}
