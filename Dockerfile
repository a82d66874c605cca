# Multi-stage build of csm: the server and the CLI on a slim Debian.
# docker build -t csm . && docker run -p 5000:5000 csm   (embedded default: SQLite + simulator)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p csm-server -p csm-cli

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app csm \
    && mkdir -p /app/data \
    && chown csm /app/data
COPY --from=build /src/target/release/csm-server /src/target/release/csm-cli /usr/local/bin/
COPY vendors /app/vendors
WORKDIR /app/data
USER csm
ENV CSM_BIND=0.0.0.0:5000 \
    CSM_VENDORS_DIR=/app/vendors
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD curl -fsS http://127.0.0.1:5000/readyz || exit 1
CMD ["csm-server"]
