FROM alpine
ENV OLD_FORM value with  spaces
ENV A=1 B="two words" C='single $A' D=a\ b E="" F=
ENV G=$A H="$B" I='$B' J=\$A K=${A}0
ENV MULTI=one \
    OTHER=two
LABEL "com.example.vendor"="ACME Inc" version="1.0" description="line \
continued"
LABEL legacy form label
ENV key="${A:+set}" ukey="${UNSET:-default}"
