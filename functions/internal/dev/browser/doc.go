// Package browser holds the web page's end-to-end tests: Debian's Chromium, driven by
// playwright-core from frontend/e2e, against the local stack on the real emulators, ONNX Runtime
// and the built page; this package starts the stack, runs them and checks what they downloaded.
package browser
