from alpine As Base
Run echo mixed case
cOpY a b
EnV a=1
workdir /x
healthcheck none
