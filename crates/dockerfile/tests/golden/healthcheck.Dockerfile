FROM alpine
HEALTHCHECK NONE
HEALTHCHECK CMD ["curl", "-f", "http://localhost/"]
HEALTHCHECK --interval=1m30s --timeout=10s --start-period=5s --start-interval=500ms --retries=5 \
  CMD curl -f http://localhost/ || exit 1
HEALTHCHECK --interval=0s --retries=0 cmd wget -q localhost
HEALTHCHECK --interval=5s none
