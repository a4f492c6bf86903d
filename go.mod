module github.com/agentlock/agentlock

go 1.26.0

require (
	github.com/gofrs/flock v0.13.2 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
