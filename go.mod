module github.com/drlimit/drl

go 1.26
