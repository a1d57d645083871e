FROM alpine
RUN echo crlf \
  continued
RUN <<EOF
body
EOF
LABEL a=b
