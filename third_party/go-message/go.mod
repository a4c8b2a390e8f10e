module github.com/emersion/go-message

go 1.14

require golang.org/x/text v0.14.0
