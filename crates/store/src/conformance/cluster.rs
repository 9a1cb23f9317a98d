//! Instance membership: one live incarnation per name, stale claims taken over, heartbeats
//! and releases only by the holder.

use std::time::Duration;

use super::fixtures::at;
use crate::{Claim, SharedStore};

const LEASE: Duration = Duration::from_secs(15);

/// A free name is claimed; a live holder refuses another incarnation (and nothing is
/// written); a stale one is taken over; only the holder heartbeats and releases.
pub async fn one_live_incarnation_per_name(store: SharedStore) {
    assert!(store.instances().await.unwrap().is_empty());
    assert_eq!(
        store
            .claim_instance("hub-1", "a", at(0), LEASE)
            .await
            .unwrap(),
        Claim::Claimed { replaced: None }
    );
    // Another incarnation, 10 s later: the holder is live.
    let Claim::Held(holder) = store
        .claim_instance("hub-1", "b", at(10), LEASE)
        .await
        .unwrap()
    else {
        panic!("a live claim was taken over");
    };
    assert_eq!(holder.incarnation, "a");
    assert_eq!(holder.heartbeat_age(at(10)), Duration::from_secs(10));
    // The holder heartbeats at 12 s; the other is refused at 26 s (14 s after it).
    assert!(
        store
            .heartbeat_instance("hub-1", "a", at(12))
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .claim_instance("hub-1", "b", at(26), LEASE)
            .await
            .unwrap(),
        Claim::Held(ref h) if h.heartbeat_at == at(12)
    ));
    // A second name is independent; the same incarnation claiming again keeps its claim.
    assert_eq!(
        store
            .claim_instance("hub-2", "c", at(26), LEASE)
            .await
            .unwrap(),
        Claim::Claimed { replaced: None }
    );
    assert_eq!(
        store
            .claim_instance("hub-2", "c", at(27), LEASE)
            .await
            .unwrap(),
        Claim::Claimed { replaced: None }
    );
    let members = store.instances().await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| (m.name.as_str(), m.incarnation.as_str(), m.heartbeat_at))
            .collect::<Vec<_>>(),
        [("hub-1", "a", at(12)), ("hub-2", "c", at(27))]
    );
    assert_eq!(members[0].started_at, at(0));
    assert_eq!(members[1].started_at, at(27));
    // 15 s after its last heartbeat the claim is stale: taken over, naming the former holder.
    let Claim::Claimed {
        replaced: Some(former),
    } = store
        .claim_instance("hub-1", "b", at(27), LEASE)
        .await
        .unwrap()
    else {
        panic!("a stale claim was not taken over");
    };
    assert_eq!(
        (former.incarnation.as_str(), former.heartbeat_at),
        ("a", at(12))
    );
    // The former holder can neither heartbeat nor release any more.
    assert!(
        !store
            .heartbeat_instance("hub-1", "a", at(28))
            .await
            .unwrap()
    );
    assert!(!store.release_instance("hub-1", "a").await.unwrap());
    assert!(
        store
            .heartbeat_instance("hub-1", "b", at(28))
            .await
            .unwrap()
    );
    assert!(store.release_instance("hub-1", "b").await.unwrap());
    assert!(!store.release_instance("hub-1", "b").await.unwrap());
    // A released name is free at once.
    assert_eq!(
        store
            .claim_instance("hub-1", "d", at(29), LEASE)
            .await
            .unwrap(),
        Claim::Claimed { replaced: None }
    );
}

/// Of concurrent claims of a free name by different incarnations exactly one wins.
pub async fn concurrent_claims_have_one_winner(store: SharedStore) {
    let claims = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim_instance("hub-x", &format!("inc-{i}"), at(0), LEASE)
                .await
                .unwrap()
        })
    });
    let mut won = Vec::new();
    for (i, claim) in claims.collect::<Vec<_>>().into_iter().enumerate() {
        match claim.await.unwrap() {
            Claim::Claimed { replaced } => {
                assert_eq!(replaced, None);
                won.push(format!("inc-{i}"));
            }
            Claim::Held(holder) => assert_ne!(holder.incarnation, format!("inc-{i}")),
        }
    }
    assert_eq!(won.len(), 1, "winners: {won:?}");
    let members = store.instances().await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].incarnation, won[0]);
}
