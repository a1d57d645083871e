FROM --plattform=x alpine
