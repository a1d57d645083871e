FROM alpine
RUN echo \\\
  continued
