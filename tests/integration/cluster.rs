//! The cluster's leases on a real Redis: three members share the slots, each slot held by one
//! at any moment; a member that dies loses its slots to the others once its leases lapse, one
//! that leaves hands them over at once, and Redis losing every key moves nothing. The leases,
//! the change feed and the shared allowances run on one Redis and on a Redis Cluster of three
//! masters.

use std::time::{Duration, Instant};

use std::sync::Arc;

use csm::core::cluster::{Cluster, Coordinator, LEASE, SLOTS, Witness};
use csm::core::monitor::StoreWitness;
use csm::core::redis_link::{RedisLink, Timeouts};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Backend, Proxy, eventually, redis_url, test_store, unique};

/// Each test on one Redis (`single`) and on a Redis Cluster (`redis_cluster`).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&crate::helpers::redis_url()).await
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&crate::helpers::redis_cluster_url()).await
                }
            )*
        }
    };
}

on_both!(
    members_share_the_slots_and_take_over_from_one_that_dies_or_leaves,
    every_member_hears_every_change_once_in_one_order_and_a_client_resumes_where_it_was,
    a_shared_allowance_counts_every_instances_messages,
);

struct Running {
    cluster: Cluster,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

fn start(id: &str, prefix: &str, url: &str) -> Running {
    start_through(id, prefix, url, None)
}

/// A member reaching Redis at `url`, with `witness` if any.
fn start_through(id: &str, prefix: &str, url: &str, witness: Option<Arc<dyn Witness>>) -> Running {
    let coordinator = Coordinator::new(url, prefix).unwrap();
    let cluster = Cluster::member(id.to_owned(), coordinator);
    if let Some(witness) = witness {
        cluster.set_witness(witness);
    }
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

async fn members_share_the_slots_and_take_over_from_one_that_dies_or_leaves(url: &str) {
    let prefix = unique("cluster");
    let a = start("a", &prefix, url);
    let b = start("b", &prefix, url);
    let c = start("c", &prefix, url);
    let all = [&a.cluster, &b.cluster, &c.cluster];
    // Each takes its own share once settled: no member holds more than its share meanwhile.
    let formed = watch_until(&all, Duration::from_secs(10), || {
        assert!(
            all.iter().all(|m| m.held_count() <= 500),
            "a member took others' share"
        );
        shared_by(&all)
    })
    .await;
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

    // Redis loses every key (a restart without persistence): a keeps all it held, and records
    // again the chargers connected to it.
    let charger = csm::core::model::StationId::parse("CP-FLUSHED").unwrap();
    assert_eq!(a.cluster.claim_charger(&charger).await, None);
    let mut connection = RedisLink::open(url, Timeouts::SHORT).unwrap();
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
    let holders = eventually(
        Duration::from_secs(5),
        || async {
            a.cluster
                .charger_holders(std::slice::from_ref(&charger))
                .await
                .unwrap()
        },
        |holders| holders[0].is_some(),
    )
    .await;
    assert_eq!(
        holders,
        [Some("a".to_owned())],
        "the registry knows the charger again"
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

fn update(station: &str, port: u32) -> std::sync::Arc<csm::core::refresh::StationUpdate> {
    use csm::core::model::{PortState, PortStatus, StationId, StationState, StatusEvent};
    let id = StationId::parse(station).unwrap();
    let at = csm::core::model::stored_precision(chrono::Utc::now());
    let reading = crate::helpers::reading(port, PortStatus::Occupied, Some(230.0));
    std::sync::Arc::new(csm::core::refresh::StationUpdate {
        state: std::sync::Arc::new(StationState {
            station_id: id.clone(),
            observed_at: Some(at),
            checked_at: at,
            last_error: None,
            failures: 0,
            ports: vec![PortState { reading, since: at }],
            counted_from: None,
        }),
        events: vec![StatusEvent {
            station_id: id,
            port,
            old: Some(PortStatus::Free),
            new: PortStatus::Occupied,
            at,
        }],
        health_changed: false,
    })
}

async fn every_member_hears_every_change_once_in_one_order_and_a_client_resumes_where_it_was(
    url: &str,
) {
    use csm::core::feed::{Announcement, Feed, Resume};
    use tokio::sync::broadcast;

    let prefix = unique("feed");
    let cancel = CancellationToken::new();
    let mut engines = Vec::new();
    let mut feeds = Vec::new();
    for _ in 0..2 {
        let feed = Feed::shared(url, &prefix).unwrap();
        let (engine, _) = broadcast::channel(64);
        tokio::spawn({
            let (feed, updates, cancel) = (feed.clone(), engine.subscribe(), cancel.clone());
            async move { feed.run(updates, cancel).await }
        });
        feed.reading().await;
        engines.push(engine);
        feeds.push(feed);
    }
    let mut heard: Vec<_> = feeds.iter().map(Feed::subscribe).collect();
    let mut announced = feeds[1].announcements();
    // Changes made on either member.
    engines[0].send(update("F1", 1)).unwrap();
    engines[1].send(update("F2", 1)).unwrap();
    engines[0].send(update("F1", 2)).unwrap();
    let mut seen = Vec::new();
    for subscriber in &mut heard {
        let mut mine = Vec::new();
        for _ in 0..3 {
            let change = tokio::time::timeout(Duration::from_secs(5), subscriber.recv())
                .await
                .expect("a change within 5 s")
                .unwrap();
            mine.push((
                change.id,
                change.update().unwrap().state.station_id.to_string(),
                change.update().unwrap().events[0].port,
            ));
        }
        seen.push(mine);
    }
    assert_eq!(
        seen[0], seen[1],
        "both members hear the same changes in the same order"
    );
    let ids: Vec<_> = seen[0].iter().map(|(id, _, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let f1: Vec<u32> = seen[0]
        .iter()
        .filter(|(_, s, _)| s == "F1")
        .map(|(_, _, p)| *p)
        .collect();
    assert_eq!(f1, [1, 2], "a station's changes keep their order");
    for subscriber in &mut heard {
        assert!(subscriber.try_recv().is_err(), "each change is heard once");
    }

    // A client that saw the first change resumes on either member, or on one that started
    // since (it reads the stream itself).
    let late = Feed::shared(url, &prefix).unwrap();
    for feed in feeds.iter().chain([&late]) {
        match feed.since(ids[0]).await {
            Resume::Changes(changes) => {
                let resumed: Vec<_> = changes.iter().map(|c| c.id).collect();
                assert_eq!(resumed, ids[1..]);
            }
            Resume::Reset(why) => panic!("reset: {why}"),
        }
    }
    assert!(matches!(
        feeds[0].since("1-0".parse().unwrap()).await,
        Resume::Reset(_)
    ));

    // Announcements reach the other member.
    feeds[0].announce(Announcement::Catalog).await;
    let what = tokio::time::timeout(Duration::from_secs(2), announced.recv())
        .await
        .expect("an announcement within 2 s")
        .unwrap();
    assert_eq!(what, Announcement::Catalog);
    cancel.cancel();
}

async fn a_shared_allowance_counts_every_instances_messages(url: &str) {
    let prefix = unique("allowance");
    let members: Vec<Cluster> = ["a", "b", "c"]
        .iter()
        .map(|id| Cluster::member((*id).into(), Coordinator::new(url, &prefix).unwrap()))
        .collect();
    // A channel of 3 messages a minute: three instances together get 3, not 9.
    let mut taken = 0;
    for round in 0..3 {
        for member in &members {
            let (_, wait) = member
                .bucket("channel:ding", 3.0, 3.0 / 60.0, true)
                .await
                .unwrap();
            if let Some(wait) = wait {
                assert!(
                    round > 0 || taken == 3,
                    "refused before the allowance was spent"
                );
                assert!(
                    wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
                    "{wait:?}"
                );
            } else {
                taken += 1;
            }
        }
    }
    assert_eq!(taken, 3);
    let (left, _) = members[0]
        .bucket("channel:ding", 3.0, 3.0 / 60.0, false)
        .await
        .unwrap();
    assert!(left < 1.0, "{left}");
    // Alone there is nothing shared: the caller counts by itself.
    assert!(
        Cluster::single("x".into())
            .bucket("channel:ding", 3.0, 0.05, true)
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_from_redis_alone_stops_and_all_keep_their_slots_when_redis_is_away_for_all()
 {
    let db = test_store(Backend::MySql).await;
    let witness: Arc<dyn Witness> = Arc::new(StoreWitness(Arc::clone(&db.store)));
    let target: std::net::SocketAddr = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (to_a, to_b) = (Proxy::start(target).await, Proxy::start(target).await);
    let prefix = unique("partition");
    let a = start_through(
        "a",
        &prefix,
        &format!("redis://{}", to_a.address),
        Some(Arc::clone(&witness)),
    );
    let b = start_through(
        "b",
        &prefix,
        &format!("redis://{}", to_b.address),
        Some(Arc::clone(&witness)),
    );
    let both = [&a.cluster, &b.cluster];
    watch_until(&both, Duration::from_secs(10), || shared_by(&both)).await;

    // b alone is cut off: it stops refreshing its stations before a takes them (never both).
    to_b.set_down(true);
    let moved = watch_until(&both, LEASE * 4, || a.cluster.held_count() == SLOTS).await;
    assert_eq!(b.cluster.held_count(), 0, "the cut-off member let go");
    eprintln!("the slots of a member cut off from Redis moved after {moved:?}");

    // The cut heals: b rejoins and takes its share again.
    to_b.set_down(false);
    watch_until(&both, Duration::from_secs(10), || {
        shared_by(&both) && b.cluster.held_count() > 0
    })
    .await;

    // Redis away for both: each keeps what it holds, for as long as it lasts.
    let held = (a.cluster.held_count(), b.cluster.held_count());
    to_a.set_down(true);
    to_b.set_down(true);
    let beats = a.cluster.beats();
    eventually(
        Duration::from_secs(10),
        || async { a.cluster.beats() },
        |n| *n >= beats + 8,
    )
    .await;
    assert_eq!(
        (a.cluster.held_count(), b.cluster.held_count()),
        held,
        "with Redis away for all, each keeps refreshing its stations"
    );
    // Redis comes back for a a moment before b: b was not cut off alone, and keeps its slots.
    to_a.set_down(false);
    let back = Instant::now();
    while back.elapsed() < Duration::from_millis(1000) {
        assert_eq!(
            b.cluster.held_count(),
            held.1,
            "b let go when Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    to_b.set_down(false);
    watch_until(&both, Duration::from_secs(10), || shared_by(&both)).await;
    for member in [a, b] {
        member.cancel.cancel();
        member.task.await.unwrap();
    }
}
