FROM alpine
COPY --chwn=1 a b
