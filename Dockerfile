# gitconf: serve validated configuration from a Git repository.
#   docker build -t gitconf .
#   docker run -p 8080:8080 -v gitconf-state:/var/lib/gitconf \
#     -e GIT_TOKEN -e GITCONF_ADMIN_TOKEN -e PROD_READ_TOKEN \
#     -v "$PWD/server.yaml:/etc/gitconf/server.yaml:ro" gitconf
# The image's own settings are a file, docker/server.yaml at /etc/gitconf/server.yaml, not
# environment variables: GITCONF_* variables beat server.yaml, so setting them here would
# silently override the file a user mounts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitconf ./gitconf
COPY schemas ./schemas
COPY sample-repo ./sample-repo
# Every server extra: replicas on PostgreSQL, SOPS secrets, RabbitMQ and NATS brokers.
RUN pip install ".[postgres,secrets,amqp,nats]" && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /var/lib/gitconf --create-home gitconf
USER gitconf
WORKDIR /var/lib/gitconf
COPY docker/server.yaml /etc/gitconf/server.yaml
ENV GITCONF_CONFIG=/etc/gitconf/server.yaml
VOLUME ["/var/lib/gitconf"]
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request,sys; port=os.environ.get('GITCONF_LISTEN','0.0.0.0:8080').rsplit(':',1)[1]; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2).status == 200 else 1)"

ENTRYPOINT ["gitconf", "serve"]
