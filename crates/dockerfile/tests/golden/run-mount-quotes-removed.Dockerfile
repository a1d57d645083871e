FROM alpine
RUN --mount=target=/src,"source=a,b" ls
