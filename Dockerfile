# guardbot in a container. Build: docker build -t guardbot .   Use: see docs/docker.md.
# BASE is pinned to a Debian release; a test builds on a local base with --build-arg BASE=...
ARG BASE=python:3.11-slim-bookworm

# Build stage: a venv with guardbot and its pinned dependencies; nothing else is kept.
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY guardbot ./guardbot
COPY docker/constraints.txt ./
RUN python3 -m venv /opt/guardbot \
    && /opt/guardbot/bin/pip install --constraint constraints.txt .

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/guardbot/bin:$PATH
COPY --from=build /opt/guardbot /opt/guardbot
# A numeric user: Kubernetes' runAsNonRoot cannot check a name.
RUN useradd --system --user-group --uid 990 --home-dir /data --no-create-home guardbot \
    && mkdir /data \
    && chown 990:990 /data
COPY docker/entrypoint.sh /usr/local/bin/guardbot-entrypoint
COPY docker/healthcheck.py /usr/local/bin/guardbot-healthcheck

# The homeserver connects from another container, so listen on every interface. Environment
# values override the config file and are never written to it.
ENV GUARDBOT_APPSERVICE__HOSTNAME=0.0.0.0

USER 990:990
WORKDIR /data
VOLUME /data
EXPOSE 29330

# Asks the listener where it listens (GUARDBOT_APPSERVICE__HOSTNAME and __PORT), not 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "/usr/local/bin/guardbot-healthcheck"]

# Through sh: works even where the checkout lost the script's executable bit.
ENTRYPOINT ["/bin/sh", "/usr/local/bin/guardbot-entrypoint"]
