FROM alpine
COPY --link
