// Package frontend is the web page. It is embedded in the Query function, which serves it at /
// next to the API, so that the page and the API it calls are one origin and one deployment.
package frontend

import "embed"

// Files are the page's files.
//
//go:embed index.html app.js style.css
var Files embed.FS
