FROM alpine
ARG STAGE=x
RUN --mount=from=$STAGE,target=/x true
