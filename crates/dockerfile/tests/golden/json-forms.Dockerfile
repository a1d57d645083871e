FROM alpine
CMD ["echo", "exec form"]
CMD [ "echo" , "spaced" ]
CMD ['echo', 'single quotes are not JSON']
CMD ["echo", "unterminated
CMD [ "echo", "unterminated bracket"
CMD echo "[JSON inside string]"
CMD ["echo", "{\"a\": \"json inside a string\"}"]
CMD ["echo","unicode \u00e9 \t tab"]
CMD []
ENTRYPOINT ["/bin/sh", "-c"]
ENTRYPOINT []
RUN ["/bin/true"]
RUN [ "echo", "not", "closed" ] trailing
COPY ["file with spaces.txt", "/dest dir/"]
ADD ["a", "b", "/c/"]
VOLUME ["/var/lib/data", "/var/log"]
VOLUME [ "not json
