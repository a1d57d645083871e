FROM alpine
ARG SIZE=big
RUN --mount=type=tmpfs,target=/t,size=$SIZE true
