FROM alpine
ENV FILE=/usr/local/lib/tool.tar.gz EMPTY= NAME=app
WORKDIR /a/$NAME/${NAME}/\$NAME/'$NAME'/"$NAME"
WORKDIR ${MISSING:-fallback}/${EMPTY:-empty-is-unset}/${EMPTY-empty-is-set}
WORKDIR /${NAME:+alt}/${MISSING:+never}/${EMPTY+set}/${EMPTY:+never}
WORKDIR /${FILE##*/}/${FILE#*/}/${FILE%%.*}/${FILE%.*}
WORKDIR /${FILE/lib/share}/${FILE//l/L}
WORKDIR /${NAME:?}/${FILE?}
USER $NAME:${NAME}
STOPSIGNAL ${SIG:-SIGINT}
VOLUME /$NAME/data ["not", "json"]
EXPOSE ${PORT:-80}/tcp 443 $UNSET
RUN echo $NAME "${NAME}" '$NAME' ${NAME:?} is left to the shell
CMD echo $NAME
ENTRYPOINT ["echo", "$NAME"]
HEALTHCHECK CMD echo $NAME
COPY --chown=$NAME:$NAME $NAME.conf /etc/$NAME/
ADD --checksum=sha256:${SUM:-abc} https://example.com/$NAME.tgz /opt/
ENV SPACED="a  b" SPLIT=8080 PORTS="1 2"
EXPOSE $PORTS
LABEL spaced=$SPACED
