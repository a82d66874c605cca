//! What one vendor request costs the HTTP client alone: `count` GETs of the native contract
//! (`/api/v1/stations/S0001/ports`, …) against `csm-cli simulate`, 64 at a time on one thread,
//! through reqwest (a general-purpose client, csm's for alert deliveries) or through hyper-util's
//! client (what csm's vendor client is built on), doing nothing with the answers. Run under callgrind to count instructions per request
//! (`scripts/profile-refresh.sh --clients` does both); `scripts/bench.py` times it against the
//! same fleet as the refresh, as the rate of a bare client.
//!
//! ```text
//! cargo run --release --example http_client_cost -- reqwest http://127.0.0.1:8080 2000
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use http_body_util::{BodyExt, Empty};

const CONCURRENCY: usize = 64;
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (client, base, count) = match args.as_slice() {
        [client, base, count] if client == "reqwest" || client == "hyper" => {
            match count.parse::<usize>() {
                Ok(count) => (client.as_str(), base.trim_end_matches('/'), count),
                Err(_) => return usage(&format!("{count:?} is not a number of requests")),
            }
        }
        _ => return usage("expected three arguments"),
    };
    let width = count.to_string().len().max(4);
    let urls = (1..=count).map(|i| format!("{base}/api/v1/stations/S{i:0width$}/ports"));
    // The clock starts once the client is built (reqwest loads the system's TLS roots first).
    let (started, outcome) = match client {
        "reqwest" => match reqwest::Client::builder()
            .pool_max_idle_per_host(CONCURRENCY)
            .build()
        {
            Ok(client) => {
                let started = Instant::now();
                (started, with_reqwest(&client, urls).await)
            }
            Err(error) => (Instant::now(), Err(error.to_string())),
        },
        _ => {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(CONCURRENCY)
                    .build_http::<Empty<bytes::Bytes>>();
            let started = Instant::now();
            (started, with_hyper(&client, urls).await)
        }
    };
    match outcome {
        Ok(bytes) => {
            eprintln!(
                "{client}: {count} requests, {bytes} bytes of bodies, {:.6} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\nusage: http_client_cost reqwest|hyper BASE_URL COUNT");
    ExitCode::from(2)
}

async fn with_reqwest(
    client: &reqwest::Client,
    urls: impl Iterator<Item = String>,
) -> Result<usize, String> {
    fetch_all(urls, |url| async move {
        let response = client.get(&url).timeout(TIMEOUT).send().await;
        let response = response.and_then(reqwest::Response::error_for_status);
        let body = response.map_err(|e| format!("{url}: {e}"))?.bytes().await;
        body.map(|b| b.len()).map_err(|e| format!("{url}: {e}"))
    })
    .await
}

async fn with_hyper(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Empty<bytes::Bytes>,
    >,
    urls: impl Iterator<Item = String>,
) -> Result<usize, String> {
    fetch_all(urls, |url| async move {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let response = tokio::time::timeout(TIMEOUT, client.get(uri))
            .await
            .map_err(|_| format!("{url}: timed out"))?
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let body = response.into_body().collect().await;
        body.map(|b| b.to_bytes().len())
            .map_err(|e| format!("{url}: {e}"))
    })
    .await
}

/// Runs `fetch` for every URL, `CONCURRENCY` at a time; the bytes of all bodies, or the first
/// error.
async fn fetch_all<F, Fut>(urls: impl Iterator<Item = String>, fetch: F) -> Result<usize, String>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<usize, String>>,
{
    let bodies = stream::iter(urls).map(fetch).buffer_unordered(CONCURRENCY);
    let mut bodies = std::pin::pin!(bodies);
    let mut bytes = 0;
    while let Some(body) = bodies.next().await {
        bytes += body?;
    }
    Ok(bytes)
}
