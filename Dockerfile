# guardbot in a container. Build: docker build -t guardbot .   Use: see README.md, "Docker".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/guardbot
COPY pyproject.toml README.md ./
COPY guardbot ./guardbot
RUN pip install . \
    && useradd --system --user-group --uid 990 --home-dir /data --no-create-home guardbot \
    && mkdir /data \
    && chown guardbot:guardbot /data
COPY docker/entrypoint.sh /usr/local/bin/guardbot-entrypoint

# The homeserver connects from another container, so listen on every interface. Environment
# values override the config file and are never written to it.
ENV GUARDBOT_APPSERVICE__HOSTNAME=0.0.0.0

USER guardbot
WORKDIR /data
VOLUME /data
EXPOSE 29330

# If you move appservice.port, set it as GUARDBOT_APPSERVICE__PORT so this check follows.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_matrix/mau/live' % os.environ.get('GUARDBOT_APPSERVICE__PORT', '29330'), timeout=4)"

# Through sh: works even where the checkout lost the script's executable bit.
ENTRYPOINT ["/bin/sh", "/usr/local/bin/guardbot-entrypoint"]
