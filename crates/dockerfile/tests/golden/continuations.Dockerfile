FROM alpine
RUN apk add \
# a comment inside the continuation
      curl \

    	
      git \   
      make
RUN echo a\\
  RUN   echo   indented   
RUN echo last \
