run echo before from
FROM alpine
