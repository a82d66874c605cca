//! The `StatusCache` contract, run on the in-process cache, on Redis, on Redis behind a near
//! cache and on a Redis Cluster of three masters (each test under a key prefix of its own).

use std::sync::Arc;
use std::time::Duration;

use csm::core::cache::{FORMAT_TAG, RedisCache, StatusCache};
use csm::core::model::{PortState, PortStatus, StationId, StationState};

use crate::helpers::{CacheKind, reading, redis_url, test_cache, unique};

crate::helpers::on_each!(
    memory(CacheKind::Memory),
    redis(CacheKind::Redis),
    near_redis(CacheKind::NearRedis),
    redis_cluster(CacheKind::RedisCluster) =>

    states_round_trip_and_many_are_read_in_order,
    entries_expire_after_their_ttl,
    removed_entries_are_gone,
    concurrent_writes_all_land_and_the_last_one_wins,
);

fn state(id: &str, ports: u32) -> Arc<StationState> {
    // The cache keeps times to the microsecond, as the database does.
    let now = csm::core::model::now();
    Arc::new(StationState {
        station_id: StationId::parse(id).unwrap(),
        observed_at: Some(now),
        checked_at: now,
        last_error: None,
        failures: 0,
        ports: (1..=ports)
            .map(|p| PortState {
                reading: reading(
                    p,
                    PortStatus::Occupied,
                    if p % 2 == 0 { Some(220.5) } else { None },
                ),
                since: now,
            })
            .collect(),
        counted_from: None,
    })
}

async fn states_round_trip_and_many_are_read_in_order(kind: CacheKind) {
    let cache = test_cache(kind, Duration::from_secs(60)).await;
    let (a, b) = (state("A", 12), state("B", 3));
    cache
        .put_many(&[Arc::clone(&a), Arc::clone(&b)])
        .await
        .unwrap();
    let got = cache.get(&a.station_id).await.unwrap().expect("cached");
    assert_eq!(*got, *a);
    let ids = [
        StationId::parse("B").unwrap(),
        StationId::parse("missing").unwrap(),
        a.station_id.clone(),
    ];
    let many = cache.get_many(&ids).await.unwrap();
    assert_eq!(many.len(), 3);
    assert_eq!(many[0].as_deref(), Some(&*b));
    assert!(many[1].is_none());
    assert_eq!(many[2].as_deref(), Some(&*a));
    assert!(cache.get_many(&[]).await.unwrap().is_empty());
}

async fn entries_expire_after_their_ttl(kind: CacheKind) {
    let cache = test_cache(kind, Duration::from_secs(1)).await;
    let a = state("A", 2);
    cache.put_many(&[Arc::clone(&a)]).await.unwrap();
    assert!(cache.get(&a.station_id).await.unwrap().is_some());
    let put = std::time::Instant::now();
    let gone = crate::helpers::eventually(
        Duration::from_secs(5),
        || cache.get(&a.station_id),
        |found| found.as_ref().is_ok_and(Option::is_none),
    )
    .await;
    assert!(gone.unwrap().is_none());
    assert!(
        put.elapsed() >= Duration::from_millis(900),
        "expired after its TTL, not before"
    );
}

/// Many jobs write at once (Redis sends the writes that meet as one pipeline): every write is
/// acknowledged only once it is stored, and two writes of one station keep their order.
async fn concurrent_writes_all_land_and_the_last_one_wins(kind: CacheKind) {
    let cache = test_cache(kind, Duration::from_secs(60)).await;
    let writes = (0..300).map(|i| {
        let cache = Arc::clone(&cache);
        async move {
            let state = state(&format!("C{i:03}"), 1 + i % 12);
            cache.put_many(std::slice::from_ref(&state)).await.unwrap();
            // Acknowledged means readable.
            let read = cache.get(&state.station_id).await.unwrap();
            assert_eq!(read.as_deref(), Some(&*state));
        }
    });
    futures_util::future::join_all(writes).await;
    let ids: Vec<StationId> = (0..300)
        .map(|i| StationId::parse(&format!("C{i:03}")).unwrap())
        .collect();
    let stored = cache.get_many(&ids).await.unwrap();
    assert!(stored.iter().all(Option::is_some), "every write landed");
    let (first, second) = (state("SAME", 2), state("SAME", 7));
    let a = cache.put_many(std::slice::from_ref(&first));
    let b = cache.put_many(std::slice::from_ref(&second));
    let (a, b) = tokio::join!(a, b);
    a.unwrap();
    b.unwrap();
    let kept = cache.get(&second.station_id).await.unwrap().unwrap();
    assert_eq!(kept.ports.len(), 7, "the later write wins");
}

async fn removed_entries_are_gone(kind: CacheKind) {
    let cache = test_cache(kind, Duration::from_secs(60)).await;
    let a = state("A", 2);
    cache.put_many(&[Arc::clone(&a)]).await.unwrap();
    cache.remove(&a.station_id).await.unwrap();
    assert!(cache.get(&a.station_id).await.unwrap().is_none());
}

#[tokio::test]
async fn redis_prefixes_keep_deployments_apart() {
    let prefix_a = format!("{}:", unique("csmtest"));
    let prefix_b = format!("{}:", unique("csmtest"));
    let a = RedisCache::new(&redis_url(), &prefix_a, Duration::from_secs(60)).unwrap();
    let b = RedisCache::new(&redis_url(), &prefix_b, Duration::from_secs(60)).unwrap();
    let s = state("SHARED", 2);
    a.put_many(&[Arc::clone(&s)]).await.unwrap();
    assert!(a.get(&s.station_id).await.unwrap().is_some());
    assert!(
        b.get(&s.station_id).await.unwrap().is_none(),
        "another prefix sees nothing"
    );
    assert_eq!(a.key(&s.station_id), format!("{prefix_a}station:SHARED"));
}

#[tokio::test]
async fn redis_values_of_another_format_read_as_misses() {
    let prefix = format!("{}:", unique("csmtest"));
    let cache = RedisCache::new(&redis_url(), &prefix, Duration::from_secs(60)).unwrap();
    let id = StationId::parse("OLD").unwrap();
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis reachable");
    let _: () = ::redis::cmd("SET")
        .arg(cache.key(&id))
        .arg(b"csm-v0\n{\"station\":\"OLD\"}".to_vec())
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        cache.get(&id).await.unwrap().is_none(),
        "an older format is not misread"
    );
    let _: () = ::redis::cmd("SET")
        .arg(cache.key(&id))
        .arg([FORMAT_TAG, b"{not json"].concat())
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        cache.get(&id).await.unwrap().is_none(),
        "a damaged value is a miss"
    );
    let ttl: i64 = {
        cache.put_many(&[state("OLD", 1)]).await.unwrap();
        ::redis::cmd("TTL")
            .arg(cache.key(&id))
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    assert!((1..=60).contains(&ttl), "values carry the TTL: {ttl}");
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_and_names_its_address() {
    let cache = RedisCache::new(
        "redis://:secretpw@127.0.0.1:1",
        "csm:",
        Duration::from_secs(60),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = cache
        .get(&StationId::parse("A").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("secretpw"), "{err}");
    // Right after a failure the cache answers at once, without asking Redis again.
    let again = cache
        .get(&StationId::parse("A").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("did not answer a moment ago"), "{again}");
    // Writes waiting together for a pipeline all get the failure.
    let writes = (0..20).map(|i| {
        let cache = cache.clone();
        async move { cache.put_many(&[state(&format!("W{i}"), 1)]).await }
    });
    for result in futures_util::future::join_all(writes).await {
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("127.0.0.1:1") && !err.contains("secretpw"),
            "{err}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}
