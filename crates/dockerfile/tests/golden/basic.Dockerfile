FROM busybox:1.36
RUN echo hello > /greeting
CMD ["cat", "/greeting"]
