FROM alpine AS src
FROM alpine
COPY --from=src --chown=app:app --chmod=755 --link --exclude=*.md --exclude=tmp/ --parents /a /b /dest/
COPY --from=0 /x /y
COPY --from=docker.io/library/busybox:latest /bin/busybox /bin/
COPY --link=false a b
COPY -- --weird-name /dest
COPY ["file with spaces", "dir with spaces/"]
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.14 /buildkit
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/f.tgz /
ADD --unpack=false --link --chown=1:2 --chmod=600 --exclude=x local.tar.gz /opt/
ADD http://example.com/big.tar.xz /usr/src/things/
