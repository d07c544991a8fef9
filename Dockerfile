# One image for every Python process of cloudeye; compose and supervisor pick the command:
#   api      gunicorn -c api/gunicorn.conf.py cloudeye:app
#   sync     python sync_main.py
#   migrate  flask setup            (flask db upgrade + admin bootstrap, then exit 0)
#   agent    python sync_main.py --agent   (a remote probe agent: compose.agent.yaml, on another host)
# docker/entrypoint.sh also accepts those four words as shortcuts, and anything else is exec'd as given.
#
# Builds with BuildKit and with the legacy builder alike (Debian's docker.io has no buildx): no syntax
# directive to pull, no BuildKit-only flag. The executable bits come from git (docker/entrypoint.sh).

# The python base: the official image, or `make base-images`' Debian stand-in (PYTHON_IMAGE in .env).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: the dependencies in a virtualenv, from pyproject.toml and constraints.txt alone (cached until
# they change); constraints.txt pins the exact versions the tests ran with (make lock) --------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY pyproject.toml constraints.txt ./
RUN python -m venv /opt/venv \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt -r requirements.txt

# --- runtime: the virtualenv, the source, a non-root user -----------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG CLOUDEYE_UID=10001
ARG CLOUDEYE_GID=10001
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=cloudeye.py \
    CLOUDEYE_ENV=production \
    DATA_DIR=/app/data \
    LOG_DIR=/app/log \
    GUNICORN_BIND=0.0.0.0:8000

# A fixed uid/gid: the log and data volumes (and any host directory mounted there) keep one owner.
RUN groupadd --system --gid "${CLOUDEYE_GID}" cloudeye \
    && useradd --system --uid "${CLOUDEYE_UID}" --gid cloudeye --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin cloudeye \
    && mkdir -p /app/log /app/data \
    && chown cloudeye:cloudeye /app/log /app/data

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root *.py ./
COPY --chown=root:root services/ services/
COPY --chown=root:root api/ api/
COPY --chown=root:root console/ console/
COPY --chown=root:root sync/ sync/
COPY --chown=root:root migrations/ migrations/
COPY --chown=root:root docker/ docker/

USER ${CLOUDEYE_UID}:${CLOUDEYE_GID}
# Named volumes start as copies of these directories, so they are owned by cloudeye from the first run.
VOLUME ["/app/log", "/app/data"]
EXPOSE 8000
# Ready, by the role the container runs: api /readyz (database, Redis, schema at head), sync a fresh
# heartbeat, a one-shot command simply running. compose states the same per service.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["python", "docker/healthcheck.py"]
# Exec form all the way down (the entrypoint ends in `exec`): SIGTERM reaches gunicorn or the worker.
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["api"]
