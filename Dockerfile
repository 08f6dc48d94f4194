# syntax=docker/dockerfile:1
# VoxBridge app image: API, dispatcher, ESL pool, outbound-socket and audio WebSocket servers.
#   docker build -t voxbridge-app .
# Runs as uid/gid 10001, the same ids as the FreeSWITCH image, so the XML the app generates
# for customer SIP accounts (shared volumes, mode 0640) is readable by FreeSWITCH.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# espeak-ng: the offline TTS voice. Debian's package versions move with point releases,
# so they are not pinned (the base image tag pins the distribution).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 voxbridge \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin voxbridge

WORKDIR /app
# Exactly the locked set, hash-checked (bin/lock): the build tools first, so packages that ship only
# sdists build with locked tools.
COPY requirements-build.lock requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements-build.lock \
    && pip install --no-cache-dir --require-hashes --no-build-isolation -r requirements.lock \
    && pip check

COPY --chown=10001:10001 . .
# var/: SQLite database when DATABASE_URL is not PostgreSQL; /srv/fsconf: generated FreeSWITCH XML.
RUN mkdir -p var /srv/fsconf/acl.d /srv/fsconf/sip_profiles/external /srv/fsconf/directory/voxbridge \
    && chown -R 10001:10001 var /srv/fsconf

ENV API_HOST=0.0.0.0 \
    FREESWITCH_CONF_DIR=/srv/fsconf

USER 10001:10001
# 8080 REST API, 8084 outbound socket (FreeSWITCH `socket`), 8085 mod_audio_fork WebSocket
EXPOSE 8080 8084 8085

# Liveness (/health/live): restart decisions must not depend on PostgreSQL or FreeSWITCH, or their
# outage restarts the app in a loop. Readiness (/health, 503 naming what is down) is for load balancers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('API_PORT', '8080'), timeout=2)"]

CMD ["python", "app.py", "serve"]
