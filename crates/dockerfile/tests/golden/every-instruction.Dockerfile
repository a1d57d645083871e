# syntax=docker/dockerfile:1
ARG BASE=alpine:3.20
FROM ${BASE} AS base
MAINTAINER Jane Doe <jane@example.com>
LABEL org.opencontainers.image.title="demo app" version=1.0
ENV APP_HOME=/app LANG=C.UTF-8
ARG USER=app
WORKDIR $APP_HOME
ADD --chown=1000:1000 https://example.com/a.tar.gz /tmp/
COPY --chmod=0644 a.txt b.txt ./
RUN apk add --no-cache curl
SHELL ["/bin/sh", "-eu", "-c"]
EXPOSE 8080/tcp 9090/udp
VOLUME /data /cache
USER ${USER}:${USER}
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD curl -f http://localhost:8080/ || exit 1
STOPSIGNAL SIGTERM
ONBUILD RUN echo built on top of base
ENTRYPOINT ["/app/run"]
CMD ["--help"]
