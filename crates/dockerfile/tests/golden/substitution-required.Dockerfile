FROM alpine
WORKDIR /${REQUIRED:?set REQUIRED please}
