module github.com/text2brain/text2brain

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/sbinet/npyio v0.9.0
	github.com/yalue/onnxruntime_go v1.27.0
	golang.org/x/image v0.47.0
	gonum.org/v1/gonum v0.17.0
	google.golang.org/protobuf v1.36.11
)

require (
	github.com/nlpodyssey/gopickle v0.3.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
