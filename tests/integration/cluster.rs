//! The cluster's leases on a real Redis: three members share the slots, each slot held by one
//! at any moment; a member that dies loses its slots to the others once its leases lapse, one
//! that leaves hands them over at once, and Redis losing every key moves nothing.

use std::time::{Duration, Instant};

use csm::core::cluster::{Cluster, Coordinator, LEASE, SLOTS};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, redis_url, unique};

struct Running {
    cluster: Cluster,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

fn start(id: &str, prefix: &str) -> Running {
    let coordinator = Coordinator::new(&redis_url(), prefix).unwrap();
    let cluster = Cluster::member(id.to_owned(), coordinator);
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (cluster, cancel) = (cluster.clone(), cancel.clone());
        async move { cluster.run(|| 0, cancel).await }
    });
    Running {
        cluster,
        cancel,
        task,
    }
}

/// For each slot, how many of `members` claim it now.
fn claims(members: &[&Cluster]) -> Vec<usize> {
    (0..SLOTS)
        .map(|slot| members.iter().filter(|m| m.owns_slot(slot)).count())
        .collect()
}

/// Whether every slot is claimed by exactly one of `members`.
fn shared_by(members: &[&Cluster]) -> bool {
    claims(members).iter().all(|n| *n == 1)
}

/// Watches `members` until `done` holds, failing at once if any slot is ever claimed twice.
async fn watch_until(members: &[&Cluster], within: Duration, done: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let twice: Vec<usize> = claims(members)
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 1)
            .map(|(slot, _)| slot)
            .collect();
        assert!(
            twice.is_empty(),
            "slots claimed by two instances: {twice:?}"
        );
        if done() {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not settled within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_the_slots_and_take_over_from_one_that_dies_or_leaves() {
    let prefix = unique("cluster");
    let a = start("a", &prefix);
    let b = start("b", &prefix);
    let c = start("c", &prefix);
    let all = [&a.cluster, &b.cluster, &c.cluster];
    let formed = watch_until(&all, Duration::from_secs(10), || shared_by(&all)).await;
    for member in all {
        let held = member.held_count();
        assert!(
            (200..=500).contains(&held),
            "{} holds {held} of {SLOTS} slots",
            member.id()
        );
    }
    let members = a.cluster.members().await.unwrap();
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    eprintln!("three members formed in {formed:?}");

    // c dies: no leave, its leases lapse; a and b take its slots, never overlapping with it.
    c.task.abort();
    let survivors = [&a.cluster, &b.cluster];
    let taken = watch_until(&all, LEASE * 4, || shared_by(&survivors)).await;
    assert!(
        taken <= LEASE * 2,
        "the survivors took the dead member's slots after {taken:?}"
    );
    eprintln!("a dead member's slots were taken after {taken:?}");
    assert!(!(0..SLOTS).any(|slot| c.cluster.owns_slot(slot)));

    // b leaves: its slots go to a at a's next beat, not after a lease.
    b.cancel.cancel();
    b.task.await.unwrap();
    let handed = watch_until(&survivors, LEASE, || a.cluster.held_count() == SLOTS).await;
    eprintln!("a leaving member's slots were taken after {handed:?}");
    assert_eq!(b.cluster.held_count(), 0);

    // Redis loses every key (a restart without persistence): a keeps all it held.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{prefix}cluster}}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
    let beats = a.cluster.beats();
    eventually(
        Duration::from_secs(5),
        || async { a.cluster.beats() },
        |n| *n >= beats + 3,
    )
    .await;
    assert_eq!(a.cluster.held_count(), SLOTS, "a kept its slots");
    let holders: Vec<Option<String>> = redis::cmd("MGET")
        .arg(
            (0..SLOTS)
                .map(|slot| format!("{{{prefix}cluster}}:slot:{slot}"))
                .collect::<Vec<_>>(),
        )
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        holders
            .iter()
            .all(|h| h.as_deref().is_some_and(|h| h.starts_with("a/"))),
        "a took its leases back"
    );
    a.cancel.cancel();
    a.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_cannot_reach_redis_takes_nothing() {
    // A coordinator at a port where nothing listens: the member beats, fails, holds nothing.
    let coordinator = Coordinator::new("redis://127.0.0.1:1", &unique("cluster")).unwrap();
    let cluster = Cluster::member("lonely".into(), coordinator);
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (cluster, cancel) = (cluster.clone(), cancel.clone());
        async move { cluster.run(|| 0, cancel).await }
    });
    eventually(
        Duration::from_secs(5),
        || async { cluster.beats() },
        |n| *n >= 3,
    )
    .await;
    assert!(!cluster.reachable());
    assert_eq!(cluster.held_count(), 0);
    assert!(cluster.members().await.is_err());
    cancel.cancel();
    task.await.unwrap();
}
