FROM alpine
RUN --mount=type=secret true
