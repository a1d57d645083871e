#  SYNTAX = docker/dockerfile:1.7
# Check=skip=JSONArgsRecommended;error=true
#escape=\

# escape=`
FROM scratch
COPY a \
  b
