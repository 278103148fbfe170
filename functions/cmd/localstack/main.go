// Command localstack runs the whole text2brain system on this machine (`make run`): the Firestore
// and Pub/Sub emulators, a fake Cloud Storage, the Query and Predict functions, a warm-up ticker in
// place of Cloud Scheduler, and a front server with the page and the API on one origin. A child
// that crashes is restarted; the console shows the URL, errors, restarts and one line per job,
// and the logs are in data/logs.
//
//	localstack                  start everything, print the URL, stop everything on Ctrl-C
//	localstack function NAME    serve one function (Query or Predict) on $PORT: how the stack runs
//	                            its functions, as the Cloud Functions Go buildpack's main does
//	                            (Query on a server with timeouts; see serveQuery)
//
// The configuration comes from the environment; see package localstack (Options) and the README.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	// The deployed root package: its init() registers Query and Predict.
	_ "github.com/text2brain/text2brain"
	"github.com/text2brain/text2brain/functions/internal/dev/localstack"
	"github.com/text2brain/text2brain/functions/internal/serve/config"
	"github.com/text2brain/text2brain/functions/internal/serve/queryapi"
	"github.com/text2brain/text2brain/functions/query"
)

const usage = `usage:
  localstack                  start the local stack (Ctrl-C stops it)
  localstack function NAME    serve the function NAME (Query or Predict) on 127.0.0.1:$PORT`

func main() {
	switch {
	case len(os.Args) == 1:
		os.Exit(run())
	case len(os.Args) == 3 && os.Args[1] == "function":
		os.Exit(function(os.Args[2]))
	case len(os.Args) == 2 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help"):
		fmt.Println(usage)
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

func run() int {
	opt, err := localstack.OptionsFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Ctrl-C during start cancels it (and stops what has started).
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	stack, err := localstack.Start(ctx, opt)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "[localstack] interrupted while starting; everything started is stopped again")
			return 1
		}
		fmt.Fprintln(os.Stderr, "localstack:", err)
		return 1
	}
	fmt.Printf("text2brain is running at %s (Ctrl-C to stop)\n", stack.URL)
	fmt.Printf("logs: %s\n", shortPath(stack.LogDir))
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "[localstack] stopping")
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localstack:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "[localstack] stopped")
		return 0
	case <-stack.Done():
		fmt.Fprintln(os.Stderr, "localstack:", stack.Err())
		return 1
	}
}

// shortPath is a directory's path, relative to the working directory when it is under it, with a
// trailing slash.
func shortPath(dir string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(rel, "..") {
			dir = rel
		}
	}
	return dir + string(filepath.Separator)
}

// function serves one registered function, as the buildpack's generated main does: with
// FUNCTION_TARGET set, the framework serves that function at every path.
func function(name string) int {
	switch t := os.Getenv("FUNCTION_TARGET"); t {
	case "":
		os.Setenv("FUNCTION_TARGET", name)
	case name:
	default:
		fmt.Fprintf(os.Stderr, "localstack function %s: FUNCTION_TARGET is %q, not the function's name\n", name, t)
		return 2
	}
	port := os.Getenv("PORT")
	if port == "" {
		fmt.Fprintf(os.Stderr, "localstack function %s: PORT is not set\n", name)
		return 2
	}
	if name == "Query" {
		return serveQuery(port)
	}
	// Predict stays on the framework's server: the framework's unexported code turns the push
	// envelope into a CloudEvent, and only the Pub/Sub emulator calls it.
	if err := funcframework.StartHostPort("127.0.0.1", port); err != nil {
		fmt.Fprintf(os.Stderr, "localstack function %s: %v\n", name, err)
		return 1
	}
	return 0
}

// serveQuery serves the Query function on a server of ours: funcframework.StartHostPort takes no
// server settings (no timeouts, the default header limit), and the local stack's Query is where
// clients' requests arrive (through the front server). The handler is the one the framework
// serves, query.Handler; what the framework adds around it applies only on Cloud Run (log flushes,
// CLOUD_RUN_TIMEOUT_SECONDS). The server reads and writes within T2B_*_TIMEOUT and answers the
// requests net/http refuses itself (431, a header timeout) with the API's JSON errors.
func serveQuery(port string) int {
	var t config.Timeouts
	if err := config.Parse(&t); err != nil {
		fmt.Fprintf(os.Stderr, "localstack function Query: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "localstack function Query: %v\n", err)
		return 1
	}
	if err := queryapi.NewHTTPServer(t, query.Handler).Serve(queryapi.JSONErrors(ln)); err != nil {
		fmt.Fprintf(os.Stderr, "localstack function Query: %v\n", err)
		return 1
	}
	return 0
}
