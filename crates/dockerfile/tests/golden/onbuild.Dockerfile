FROM alpine
ONBUILD ADD . /app/src
ONBUILD RUN --mount=type=cache,target=/root/.cache make -C /app/src
onbuild copy --from=builder /out /out
ONBUILD ENV A=$B
ONBUILD FOO unknown triggers are accepted until they run
