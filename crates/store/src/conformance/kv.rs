//! Small keyed records: get, insert-if-absent (one winner), put, prefix list, delete.

use serde_json::json;

use super::fixtures::at;
use crate::SharedStore;

/// Records are namespaced, inserted once, replaced, listed by prefix in key order, deleted.
pub async fn records(store: SharedStore) {
    assert_eq!(store.kv_get("api_keys", "key:a").await.unwrap(), None);
    assert!(
        store
            .kv_insert("api_keys", "key:a", json!({ "v": 1 }), at(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .kv_insert("api_keys", "key:a", json!({ "v": 2 }), at(2))
            .await
            .unwrap()
    );
    assert_eq!(
        store.kv_get("api_keys", "key:a").await.unwrap(),
        Some(json!({ "v": 1 }))
    );
    store
        .kv_put("api_keys", "key:a", json!({ "v": 3 }), at(3))
        .await
        .unwrap();
    assert_eq!(
        store.kv_get("api_keys", "key:a").await.unwrap(),
        Some(json!({ "v": 3 }))
    );
    for key in ["key:c", "kez", "key:b", "ke"] {
        store
            .kv_put("api_keys", key, json!(key), at(4))
            .await
            .unwrap();
    }
    store
        .kv_put("other", "key:z", json!("elsewhere"), at(4))
        .await
        .unwrap();
    let listed = store.kv_list("api_keys", "key:", 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["key:a", "key:b", "key:c"]
    );
    assert_eq!(listed[1].1, json!("key:b"));
    assert_eq!(store.kv_list("api_keys", "key:", 2).await.unwrap().len(), 2);
    assert_eq!(store.kv_list("api_keys", "", 10).await.unwrap().len(), 5);
    assert!(
        store
            .kv_list("api_keys", "zzz", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.kv_delete("api_keys", "key:b").await.unwrap());
    assert!(!store.kv_delete("api_keys", "key:b").await.unwrap());
    assert_eq!(store.kv_get("api_keys", "key:b").await.unwrap(), None);
    assert_eq!(
        store.kv_get("other", "key:z").await.unwrap(),
        Some(json!("elsewhere"))
    );
}

/// Thirty concurrent inserts of one key: exactly one wins.
pub async fn insert_has_one_winner(store: SharedStore) {
    let mut joins = Vec::new();
    for n in 0..30 {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            store
                .kv_insert("idempotency", "req-1", json!({ "writer": n }), at(1))
                .await
        }));
    }
    let mut winners = Vec::new();
    for (n, join) in joins.into_iter().enumerate() {
        if join.await.unwrap().unwrap() {
            winners.push(n);
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(
        store.kv_get("idempotency", "req-1").await.unwrap(),
        Some(json!({ "writer": winners[0] }))
    );
}
