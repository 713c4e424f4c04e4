module github.com/msc-go/msc

go 1.24
