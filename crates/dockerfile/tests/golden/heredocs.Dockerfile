FROM alpine
ENV NAME=world
RUN <<EOF
echo hello $NAME
apk add curl
EOF
RUN <<-EOF
	echo tabs stripped
		echo twice
	EOF
RUN <<'EOF'
echo not expanded $NAME
EOF
RUN <<EOF1 cat > /a && <<EOF2 cat > /b
first
EOF1
second
EOF2
RUN 3<<EOF cat /dev/fd/3
on fd 3
EOF
RUN <<COMPLEX python3
print('hello')
COMPLEX
RUN --mount=type=cache,target=/root/.cache <<EOF
#!/bin/sh
echo shebang script
EOF
COPY <<EOF /etc/motd
Hello $NAME
"quotes" stay
EOF
COPY <<"EOF" /literal
Hello $NAME
EOF
COPY <<A <<B /dir/
B
A
A
B
COPY --chmod=0755 <<-SCRIPT /usr/local/bin/run
	#!/bin/sh
	exec "$@"
	SCRIPT
RUN cat <<EOF \
  > /continued
body after continuation
EOF
RUN echo "<<NOTHEREDOC"
RUN ["cat", "<<NOTHEREDOC"]
ONBUILD RUN <<EOF
echo on build
EOF
USER <<NOTALLOWED
