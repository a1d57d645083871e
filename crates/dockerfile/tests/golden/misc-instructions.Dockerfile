FROM alpine
EXPOSE 80 443/tcp 53/udp 8000-8010
VOLUME ["/data"]
VOLUME /a /b
USER 1000:1000
USER app
WORKDIR relative/dir with spaces
STOPSIGNAL 9
MAINTAINER someone
