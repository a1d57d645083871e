FROM alpine
ARG SRC=x
COPY --from=$SRC /a /b
