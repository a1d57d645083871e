FROM alpine
ARG CACHE=/root/.cache
RUN --mount=type=cache,target=${CACHE},id=pip,sharing=locked,mode=0700,uid=1000 pip install -r req.txt
RUN --mount=type=bind,from=build,source=/out,target=/in,rw ls /in
RUN --mount=type=secret,id=token,env=TOKEN,required --mount=type=ssh git clone git@example.com:x.git
RUN --mount=type=tmpfs,target=/tmp,size=64m --network=none --security=insecure true
RUN --network=host --device=/dev/fuse echo net
RUN --mount=target=/src,source=$CACHE ls
