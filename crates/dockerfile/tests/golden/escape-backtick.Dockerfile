# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
WORKDIR C:\app
COPY testfile.txt c:\
RUN dir c:\ `
    && echo done
ENV DIR=C:\Program` Files
LABEL path="C:\a\b" quote="say `"hi`""
RUN echo \
RUN echo two
