FROM alpine
ONBUILD maintainer me
