# The image of every edgeplane service; docker-compose.yml builds each one from this file with build args:
#   PROJECT          the service's workspace folder (core-data, device-services/modbus, ...): the image installs
#                    it and the workspace projects it depends on (`scripts/workspace.py closure PROJECT`), no other
#   MODULE           what the container runs unless told otherwise: python -m MODULE
#   HEALTHCHECK_URL  what the image's HEALTHCHECK asks (python -m edgeplane_common.healthcheck URL)
# By hand, from the repository root:
#   docker build --build-arg PROJECT=core-data --build-arg MODULE=core_data \
#     --build-arg HEALTHCHECK_URL=http://127.0.0.1:59880/api/v3/health -t edgeplane/core-data .

# The projects to install, picked from the build context: their pyproject files alone in /manifests (the
# dependency layer below is rebuilt only when one of them changes), their whole folders in /projects, and
# their paths in /src (never bare names, which pip would look up on an index) in /src/folders.
FROM python:3.11-slim AS sources
ARG PROJECT
COPY . /context/
RUN set -eu; test -n "$PROJECT" || { echo "build arg PROJECT is required" >&2; exit 1; }; \
    cd /context; \
    folders="$(python scripts/workspace.py closure "$PROJECT")"; \
    mkdir -p /manifests/scripts /projects; \
    cp scripts/workspace.py /manifests/scripts/; \
    for folder in $folders; do \
      echo "/src/$folder" >>/manifests/folders; \
      mkdir -p "/manifests/$folder" "/projects/$folder"; \
      cp "$folder/pyproject.toml" "/manifests/$folder/"; \
      cp -a "$folder/." "/projects/$folder/"; \
    done

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# PIP_CERT: trust the system store (a TLS-inspecting proxy adds its root there); harmless elsewhere.
# Third-party dependencies first, read from the pyproject files alone.
COPY --from=sources /manifests/ /src/
WORKDIR /src
RUN python -m venv --without-pip /opt/venv \
 && python scripts/workspace.py requirements $(cat folders) >/tmp/requirements.txt \
 && if [ -s /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi \
 && python -m pip --python /opt/venv/bin/python install -r /tmp/requirements.txt
# Then the local projects, in one pip call and without dependencies, so edgeplane-common comes from
# ./common, never from an index; `pip check` proves that nothing is missing.
COPY --from=sources /projects/ /src/
RUN if [ -s /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi \
 && python -m pip --python /opt/venv/bin/python install --no-deps $(cat folders) \
 && python -m pip --python /opt/venv/bin/python check
# The services run with PYTHONOPTIMIZE=2 (below; docs/adr/0005-services-run-optimized.md), which reads
# *.opt-2.pyc files, never the plain ones pip compiled: compile those here. The image writes no bytecode
# (PYTHONDONTWRITEBYTECODE), so without them every start would compile every module (slower, and a peak of
# memory that stays).
RUN /opt/venv/bin/python -m compileall -q -j 0 -o 2 /opt/venv/lib

FROM python:3.11-slim
ARG MODULE
ARG HEALTHCHECK_URL
# PYTHONOPTIMIZE=2 (python -OO): no docstrings or asserts in memory, a few MiB less per service; every python
# of the image runs so, the commands docker-compose.yml gives too (docs/adr/0005-services-run-optimized.md).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONOPTIMIZE=2 \
    PYTHONUNBUFFERED=1 \
    EDGEPLANE_IMAGE_MODULE=${MODULE} \
    EDGEPLANE_IMAGE_HEALTHCHECK_URL=${HEALTHCHECK_URL}
RUN test -n "$EDGEPLANE_IMAGE_MODULE" -a -n "$EDGEPLANE_IMAGE_HEALTHCHECK_URL" \
    || { echo "build args MODULE and HEALTHCHECK_URL are required" >&2; exit 1; } \
 && groupadd --gid 10001 edgeplane \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin edgeplane
COPY --from=build /opt/venv /opt/venv
# The standard library's opt-2 bytecode too (the base image's may lack it; compileall writes only what is missing).
RUN python -m compileall -q -j 0 -o 2 -x '/tests?/' "$(python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
USER 10001:10001
# Shell form, for the build args' values (docker-compose.yml gives each service its own healthcheck too);
# `exec` in CMD leaves python as PID 1, which gets the stop signal.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD exec python -m edgeplane_common.healthcheck "$EDGEPLANE_IMAGE_HEALTHCHECK_URL"
CMD exec python -m "$EDGEPLANE_IMAGE_MODULE"
