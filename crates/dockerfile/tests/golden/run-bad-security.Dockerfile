FROM alpine
RUN --security=root true
