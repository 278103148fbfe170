# Sourced by the Cloud Build scripts: the Go and Terraform copied into the workspace by the
# toolchain steps, and Go's caches kept in the workspace so that later steps reuse them.
T2B_TOOLCHAIN=${T2B_TOOLCHAIN:-/workspace/.toolchain}
export PATH="$T2B_TOOLCHAIN/go/bin:$T2B_TOOLCHAIN/bin:$PATH"
export GOPATH=${GOPATH:-/workspace/.gopath}
export GOCACHE=${GOCACHE:-/workspace/.gocache}
export CGO_ENABLED=1
