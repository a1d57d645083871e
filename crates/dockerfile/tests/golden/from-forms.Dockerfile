FROM scratch
FROM --platform=linux/arm64 alpine:3.20 AS Builder
FROM builder as next
FROM --platform=$TARGETPLATFORM golang@sha256:0000000000000000000000000000000000000000000000000000000000000000 AS go-1.22_x
from alpine AS builder
FROM next
