// Package onnxpb holds the ONNX protobuf types (ModelProto, GraphProto, …), generated from the ONNX
// schema (onnx.proto, IR version 8, Apache-2.0, © ONNX Project Contributors).
//
// Generated here rather than imported: the Go packages that carry these types bring a whole tensor
// library with them, and this project only writes graphs.
package onnxpb

//go:generate protoc --plugin=protoc-gen-go=$GOPATH/bin/protoc-gen-go --go_out=. --go_opt=paths=source_relative onnx.proto
