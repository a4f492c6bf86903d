module github.com/agentlock/agentlock

go 1.25.0
