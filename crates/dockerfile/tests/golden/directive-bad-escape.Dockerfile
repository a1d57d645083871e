# escape=|
FROM scratch
