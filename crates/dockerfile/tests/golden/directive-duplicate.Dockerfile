# syntax=a
# escape=`
# syntax=b
FROM scratch
