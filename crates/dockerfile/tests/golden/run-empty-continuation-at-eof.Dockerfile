FROM alpine
RUN \
