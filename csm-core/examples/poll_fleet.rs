//! Embedding csm-core without the server: poll a simulated fleet with the refresh engine and
//! print every port change as it happens.
//!
//! `cargo run -p csm-core --example poll_fleet -- [STATIONS] [ROUNDS]` (defaults: 20 stations, 5 rounds).

use std::sync::Arc;
use std::time::Duration;

use csm_core::cache::MemoryCache;
use csm_core::charger::{Chargers, Simulator};
use csm_core::refresh::{Engine, EngineConfig};
use csm_core::store::{SqliteStore, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let stations: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);

    // A throwaway SQLite file, the in-process cache and a fleet whose clock runs 10 minutes
    // a second, so changes show up quickly.
    let dir = std::env::temp_dir().join(format!("csm-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store =
        SqliteStore::connect(&format!("sqlite://{}", dir.join("fleet.db").display()), 4).await?;
    store.migrate().await?;
    let simulator = Arc::new(Simulator::with_fleet(7, 600.0, stations, 12));
    let fleet: Vec<_> = simulator.fleet().into_iter().map(Arc::new).collect();
    let mut chargers = Chargers::new();
    chargers.insert(simulator);
    let engine = Engine::new(
        Arc::new(store),
        Arc::new(MemoryCache::new(Duration::from_secs(60))),
        chargers,
        EngineConfig::default(),
    );

    let mut updates = engine.subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(update) = updates.recv().await {
            for event in &update.events {
                let old = event.old.map_or("(new)", |s| s.as_str());
                println!(
                    "{} port {:>2}: {old} → {}",
                    event.station_id, event.port, event.new
                );
            }
        }
    });

    for round in 1..=rounds {
        let outcomes = engine.refresh_many(fleet.clone(), |_| {}).await;
        let changes: usize = outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
            .map(|s| s.status_changes)
            .sum();
        println!(
            "-- round {round}: {} stations, {changes} status changes",
            outcomes.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let report = engine.shutdown(Duration::from_secs(5)).await;
    printer.abort();
    std::fs::remove_dir_all(&dir)?;
    println!("done; {} rows left unwritten", report.pending_rows);
    Ok(())
}
