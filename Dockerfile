# FaceLedger service image: `faceledger serve` on port 8000, data in the /data volume.
# Build: docker build -t faceledger .     Run with PostgreSQL: docker compose up (compose.yaml, docs/deployment.md)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Models come from PyPI packages (checked against SHA-256 at load); nothing is downloaded at run time.
RUN python -m venv /opt/faceledger \
 && /opt/faceledger/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/faceledger/bin/pip install --no-cache-dir '.[server,postgres]'

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin faceledger \
 && mkdir -p /data && chown faceledger /data && chmod 700 /data
COPY --from=build /opt/faceledger /opt/faceledger
COPY deploy/entrypoint.sh /usr/local/bin/faceledger-entrypoint
ENV PATH=/opt/faceledger/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FACELEDGER_DATA_DIR=/data
USER faceledger
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
# FACELEDGER_<NAME>_FILE=/run/secrets/x sets FACELEDGER_<NAME> from that file (see deploy/entrypoint.sh).
ENTRYPOINT ["/usr/local/bin/faceledger-entrypoint"]
CMD ["faceledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
