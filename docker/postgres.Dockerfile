# syntax=docker/dockerfile:1
# PostgreSQL from Debian's own packages, for hosts that reach no image registry (compose.local.yaml,
# `scripts/container-smoke.sh compose`). Docker users with a registry keep compose.yaml's
# postgres:16; this image takes the same settings as that one: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB (made on first start), data in /var/lib/postgresql/data (a volume), port 5432,
# pg_isready on PATH for the health check. Debian bookworm ships PostgreSQL 15.
#   podman build -f docker/postgres.Dockerfile --build-arg BASE_IMAGE=localhost/vidground-base:bookworm .
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG PG_MAJOR=15
# uid/gid 999 like the official image (a numeric USER below; volumes keep their owner); the
# package would make a cluster of its own in /var/lib/postgresql/15/main: not wanted.
# Debian stable's package is the pin (its security updates are wanted): no version given.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql \
       --shell /bin/sh postgres \
    && mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
RUN mkdir -p "$PGDATA" /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 0700 "$PGDATA" && chmod 0755 /usr/local/bin/postgres-entrypoint
USER 999:999
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=5s --retries=30 CMD ["pg_isready", "-h", "127.0.0.1"]
ENTRYPOINT ["postgres-entrypoint"]
