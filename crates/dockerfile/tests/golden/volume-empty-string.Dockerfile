FROM alpine
VOLUME ["", "/x"]
