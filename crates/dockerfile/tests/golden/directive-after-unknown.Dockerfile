# unknowndirective=x
# escape=`
FROM scratch
RUN a \
  b
