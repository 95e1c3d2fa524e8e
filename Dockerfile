# Zero-downtime Flask service under gunicorn.
#
#   docker build --build-arg APP_VERSION=v1 -t zero-downtime-app:v1 .
#   podman build --build-arg APP_VERSION=v1 -t zero-downtime-app:v1 .
#
# BASE_IMAGE is the official Python slim image from the public ECR mirror of
# Docker Hub. It is Python 3.11, the version the tests run on and the locks
# are compiled for (Makefile PYTHON_VERSION); change all three together. Any
# Debian-based image with python3 and its venv module works as a base (see
# tools/image/build-base-image.sh for a locally built stand-in).
#
# Pinning policy (docs/testing.md): the tag 3.11-slim-bookworm, which the
# official images rebuild for every Python 3.11 patch release and Debian 12
# update, so a release build gets current fixes; the digest it resolved to is
# recorded in each release's provenance. Dependabot (docker, weekly) proposes
# newer tags, and digest updates once a digest is pinned here.
ARG BASE_IMAGE=public.ecr.aws/docker/library/python:3.11-slim-bookworm

# ---- the default base, once more, for Dependabot ----------------------------
# Dependabot reads FROM lines only, never ARG defaults. Nothing is built from
# this stage (BuildKit and podman skip unused stages); tests/test_workflows.py
# keeps it equal to BASE_IMAGE's default.
FROM public.ecr.aws/docker/library/python:3.11-slim-bookworm AS base-image-for-dependabot

# ---- build stage: the locked dependencies into a virtual environment --------
FROM ${BASE_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
COPY requirements.txt .

# The optional build secret "pip_ca" is an extra CA bundle for builds behind a
# TLS-intercepting proxy (--secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt).
# It is used only when present and never stored in a layer.
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements.txt

# ---- runtime stage: the virtual environment and the app, nothing else -------
FROM ${BASE_IMAGE} AS runtime

# A fixed numeric UID/GID so that Kubernetes can check runAsNonRoot and the
# manifests can set runAsUser/runAsGroup to the same values.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
# Owned by root and read-only for the app user.
COPY app/ /srv/app/

# Version-specific metadata last, so that v1 and v2 share every layer above.
ARG APP_VERSION=dev
# Filled in by CI (git commit, RFC 3339 build time, repository URL); empty otherwise.
ARG VCS_REF=
ARG BUILD_DATE=
ARG SOURCE_URL=

# Byte-compile the app now: the read-only root filesystem lets Python cache nothing at run
# time. Running a step here after the ARGs also makes podman/buildah rebuild the LABEL and ENV
# layers below for each APP_VERSION (it would otherwise reuse another version's cached layers:
# containers/buildah#5501).
RUN /opt/venv/bin/python -m compileall -q /srv/app

LABEL org.opencontainers.image.title="zero-downtime-app" \
      org.opencontainers.image.description="Flask service under gunicorn that drains on SIGTERM" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="${SOURCE_URL}"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    APP_VERSION=${APP_VERSION} \
    PORT=8080

USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM

# Exec form: python (the gunicorn master) is PID 1 and receives SIGTERM itself.
CMD ["python", "-m", "app"]
