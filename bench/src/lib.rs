//! The programs behind `scripts/bench.sh`, one binary each under `src/bin/`: the SSE fan-out,
//! the bare HTTP client the refresh is compared with, the history and the alert benchmarks.
#![forbid(unsafe_code)]
