# gitconf: serve validated configuration from a Git repository.
#   docker build -t gitconf .
#   docker run -p 8080:8080 -v gitconf-state:/var/lib/gitconf \
#     -e GITCONF_REPO=https://github.com/acme/config.git -e GITCONF_LISTEN=0.0.0.0:8080 \
#     -v $PWD/server.yaml:/etc/gitconf/server.yaml:ro -e GITCONF_CONFIG=/etc/gitconf/server.yaml gitconf
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitconf ./gitconf
COPY schemas ./schemas
COPY sample-repo ./sample-repo
RUN pip install . && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /var/lib/gitconf --create-home gitconf
USER gitconf
WORKDIR /var/lib/gitconf
ENV GITCONF_STATE_DIR=/var/lib/gitconf GITCONF_LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/gitconf"]
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request,sys; port=os.environ.get('GITCONF_LISTEN','0.0.0.0:8080').rsplit(':',1)[1]; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2).status == 200 else 1)"

ENTRYPOINT ["gitconf", "serve"]
